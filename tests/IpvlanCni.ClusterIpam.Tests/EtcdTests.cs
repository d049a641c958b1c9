using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using Xunit.Abstractions;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

public sealed class SingleEtcd : IDisposable
{
    public EtcdCluster Cluster { get; } = new(1);
    public void Dispose() => Cluster.Dispose();
}

/// <summary>The engine on a real one-member etcd (each test its own network name, so tests share the member).</summary>
public class EtcdTests(SingleEtcd etcd, ITestOutputHelper output) : IClassFixture<SingleEtcd>
{
    ClusterIpamConfig Config(string node, string network, string ranges = """[[{"subnet":"10.9.0.0/28"}]]""", string extra = "\"blockSize\":4") =>
        Parse(node, ranges, extra, etcd.Cluster.EndpointsJson, network);

    [Fact]
    public void ExhaustionFromSeveralNodesGivesExactlyTheCapacity()
    {
        using var store = new EtcdKvStore(Config("n0", "exhaust"));
        var engines = Enumerable.Range(0, 4).Select(_ => new ClusterIpamEngine(store)).ToList();
        var got = new System.Collections.Concurrent.ConcurrentBag<string>();
        var failures = new System.Collections.Concurrent.ConcurrentBag<int>();
        Parallel.For(0, 20, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            try
            {
                got.Add(IpMath.Format(engines[i % 4].Add(Config($"n{i % 4}", "exhaust"), Att($"n{i % 4}", $"c{i}"), Soon).Addresses[0].Address.Address));
            }
            catch (CniException e)
            {
                failures.Add(e.Code);
            }
        });
        Assert.Equal(13, got.Count);
        Assert.Equal(13, got.Distinct().Count());
        Assert.All(failures, c => Assert.Equal(CniErrorCode.AddressesExhausted, c));
        Assert.Equal(7, failures.Count);
    }

    [Fact]
    public void FiveConcurrentAddsForOneContainerGetOneAddress()
    {
        var config = Config("n1", "dup");
        var results = new string[5];
        Parallel.For(0, 5, i =>
        {
            using var store = new EtcdKvStore(config);
            results[i] = new ClusterIpamEngine(store).Add(config, Att("n1", "c1"), Soon).Addresses[0].Address.ToString();
        });
        Assert.Single(results.Distinct());
        using var s = new EtcdKvStore(config);
        Assert.Single(s.Read([Read.Under("/ipvlan-cni/ipam/v1/dup/ip/")], Soon).Under("/ipvlan-cni/ipam/v1/dup/ip/"));
    }

    [Fact]
    public void AddAfterDelIsFencedAndDelIsIdempotent()
    {
        var config = Config("n1", "fence");
        using var store = new EtcdKvStore(config);
        var engine = new ClusterIpamEngine(store);
        engine.Add(config, Att("n1", "c1"), Soon);
        engine.Release(config, Att("n1", "c1"), Soon);
        engine.Release(config, Att("n1", "c1"), Soon);
        Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => engine.Add(config, Att("n1", "c1"), Soon)).Code);
        Assert.Empty(store.Read([Read.Under("/ipvlan-cni/ipam/v1/fence/ip/")], Soon).Under("/ipvlan-cni/ipam/v1/fence/ip/"));
    }

    [Fact]
    public void DualStackOnEtcd()
    {
        var config = Config("n1", "dual", """[[{"subnet":"10.9.1.0/24"}],[{"subnet":"fd00:9::/64"}]]""", "");
        using var store = new EtcdKvStore(config);
        var got = new ClusterIpamEngine(store).Add(config, Att("n1", "c1"), Soon);
        Assert.Equal(2, got.Addresses.Count);
        Assert.True(IpPrefixOf("10.9.1.0/24").Contains(got.Addresses[0].Address.Address));
        Assert.Equal(24, got.Addresses[0].Address.PrefixLength);
        Assert.True(IpPrefixOf("fd00:9::/64").Contains(got.Addresses[1].Address.Address));
        Assert.Equal("10.9.1.1", IpMath.Format(got.Addresses[0].Gateway!));
        var again = new ClusterIpamEngine(store).Add(config, Att("n1", "c1"), Soon);
        Assert.Equal(got.Addresses.Select(a => a.Address), again.Addresses.Select(a => a.Address));
    }

    static IpvlanCni.Network.IpPrefix IpPrefixOf(string s) => IpvlanCni.Network.IpPrefix.Parse(s);

    [Fact]
    public void SteadyStateAddIsTwoRoundTrips()
    {
        var config = Config("n1", "rtt", """[[{"subnet":"10.9.0.0/16"}]]""", "\"blockSize\":64");
        using var store = new EtcdKvStore(config);
        var engine = new ClusterIpamEngine(store);
        engine.Add(config, Att("n1", "warm"), Soon);
        long before = engine.RoundTrips;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 20; i++)
            engine.Add(config, Att("n1", $"c{i}"), Soon);
        Assert.Equal(40, engine.RoundTrips - before);
        output.WriteLine($"steady-state ADD on a one-member etcd: {clock.Elapsed.TotalMilliseconds / 20:0.00} ms, 2 round trips");
    }

    [Fact]
    public void SteadyStateDelIsTwoRoundTripsAndARevokedLeaseIsReplaced()
    {
        var config = Config("n1", "delrtt", """[[{"subnet":"10.9.0.0/16"}]]""", "\"blockSize\":64");
        using var store = new EtcdKvStore(config);
        var engine = new ClusterIpamEngine(store);
        for (int i = 0; i < 12; i++)
            engine.Add(config, Att("n1", $"c{i}"), Soon);
        engine.Release(config, Att("n1", "c0"), Soon); // the first DEL asks for the tombstone lease
        long before = engine.RoundTrips;
        for (int i = 1; i < 6; i++)
            engine.Release(config, Att("n1", $"c{i}"), Soon);
        Assert.Equal(10, engine.RoundTrips - before);

        // The shared lease revoked behind the engine's back: the next DEL's commit fails, it asks for a new lease, and succeeds.
        using (var admin = new dotnet_etcd.EtcdClient(Grpc.Net.Client.GrpcChannel.ForAddress(etcd.Cluster.Members[0].ClientUrl).CreateCallInvoker()))
            foreach (var lease in admin.LeaseLeasesAsync(new Etcdserverpb.LeaseLeasesRequest()).GetAwaiter().GetResult().Leases)
                admin.LeaseRevokeAsync(new Etcdserverpb.LeaseRevokeRequest { ID = lease.ID }).GetAwaiter().GetResult();
        engine.Release(config, Att("n1", "c6"), Soon);
        var view = ClusterView.Read(store, config, Soon);
        Assert.DoesNotContain(view.LiveAttachments, a => a.Record.Owner!.ContainerId == "c6");
        Assert.Empty(view.Check());
        // The tombstones of c0..c5 went with the revoked lease; c6's fences a late ADD.
        Assert.Equal(CniErrorCode.UnknownContainer, Assert.Throws<CniException>(() => engine.Add(config, Att("n1", "c6"), Soon)).Code);
    }

    [Fact]
    public void UnreachableEtcdFailsWithinTheDeadline()
    {
        var config = Parse("n1", """[[{"subnet":"10.9.0.0/28"}]]""", "\"timeoutSeconds\":2", "\"http://127.0.0.1:1\"", "down");
        using var store = new EtcdKvStore(config);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Throws<StoreUnavailableException>(() => new ClusterIpamEngine(store).Add(config, Att("n1", "c1"), DateTimeOffset.UtcNow.AddSeconds(2)));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 3);
    }
    /// <summary>
    /// The agent's store keeps no hidden back-off: after its calls failed for 10 s (the member down, as when etcd is
    /// restarted or a fresh agent's first connects were slow), the first call after the member listens again
    /// succeeds. gRPC's own connection manager here waited out a back-off of its own and failed calls meanwhile.
    /// </summary>
    [Fact]
    public void AStoreWhoseCallsFailedReachesEtcdAsSoonAsItListensAgain()
    {
        using var cluster = new EtcdCluster(1);
        var member = cluster.Members[0];
        var config = Parse("n1", """[[{"subnet":"10.9.0.0/28"}]]""", "", cluster.EndpointsJson, "backoff");
        using var store = new EtcdKvStore(config);
        store.Read([Read.One("/backoff")], Soon);

        cluster.Kill(member);
        var down = System.Diagnostics.Stopwatch.StartNew();
        int failed = 0;
        using (var silent = new SilentPort(member.ClientPort))
            while (down.Elapsed < TimeSpan.FromSeconds(10))
            {
                Assert.Throws<StoreUnavailableException>(() => store.Read([Read.One("/backoff")], DateTimeOffset.UtcNow.AddMilliseconds(2500)));
                failed++;
            }
        cluster.Start(member);
        cluster.WaitHealthy(TimeSpan.FromSeconds(30));

        var reply = Record.Exception(() => store.Read([Read.One("/backoff")], DateTimeOffset.UtcNow.AddSeconds(3)));
        Assert.True(reply is null, $"after {failed} failed calls in 10 s, the first call once etcd listened again failed: {reply?.Message}");
    }
}

/// <summary>
/// A loopback port whose connects neither complete nor fail: a listener that never accepts, its one-slot backlog
/// filled, so the kernel drops every further SYN and a client's connect runs into its own timeout.
/// </summary>
sealed class SilentPort : IDisposable
{
    readonly System.Net.Sockets.Socket _listener = new(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
    readonly List<System.Net.Sockets.Socket> _fillers = [];

    public SilentPort(int port)
    {
        _listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        _listener.Listen(0);
        // Linux queues backlog + 1 connections: one filler takes the slot.
        var filler = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        filler.Connect(_listener.LocalEndPoint!);
        _fillers.Add(filler);
    }

    public void Dispose()
    {
        foreach (var f in _fillers)
            f.Dispose();
        _listener.Dispose();
    }
}
