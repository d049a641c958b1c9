using System.Collections.Concurrent;
using System.Diagnostics;
using IpvlanCni.Cni;
using IpvlanCni.ClusterIpam;
using IpvlanCni.Ipam;
using Xunit.Abstractions;
using static IpvlanCni.ClusterIpam.Tests.TestConfig;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// Dozens of simulated nodes allocating and releasing at once against a three-member etcd while members are killed,
/// restarted and paused (the leader among them). The oracle reads everything at one revision, during and after:
/// never two owners of an address, nothing lost, and after the runtime's retried DELs and a GC nothing leaked;
/// filling the range afterwards yields exactly what is left. `make soak` runs it longer (IPVLANCNI_ETCD_STORM_SECONDS).
/// </summary>
public class StormTests(ITestOutputHelper output)
{
    const string Range = """[[{"subnet":"10.77.0.0/24"}]]"""; // 254 usable less the gateway: 253
    const int Capacity = 253;

    static int Seconds => int.TryParse(Environment.GetEnvironmentVariable("IPVLANCNI_ETCD_STORM_SECONDS"), out int s) ? s : 25;

    [Fact]
    public void StormOnAThreeMemberClusterWithMembersAndLeadersKilled()
    {
        using var cluster = new EtcdCluster(3);
        const int Nodes = 24;
        var configs = Enumerable.Range(0, Nodes).Select(i => Parse($"node{i}", Range, "\"blockSize\":8,\"timeoutSeconds\":8", cluster.EndpointsJson, "storm")).ToArray();
        var stores = configs.Select(c => new EtcdKvStore(c)).ToArray();
        var engines = stores.Select(s => new ClusterIpamEngine(s)).ToArray();
        // What each node's runtime believes: held attachments with their address, and ADDs/DELs that failed (to retry).
        var held = new ConcurrentDictionary<string, (int Node, string Cid, string Ip)>();
        var uncertain = new ConcurrentDictionary<string, (int Node, string Cid)>();
        var problems = new ConcurrentQueue<string>();
        var reasons = new ConcurrentDictionary<string, int>();
        long adds = 0, dels = 0, failures = 0, exhausted = 0, checks = 0;
        var until = DateTime.UtcNow.AddSeconds(Seconds);

        void Worker(int node)
        {
            var random = new Random(node);
            var mine = new List<string>();
            int n = 0;
            while (DateTime.UtcNow < until)
            {
                var config = configs[node];
                var deadline = DateTimeOffset.UtcNow + config.Timeout;
                if (mine.Count == 0 || (random.Next(3) != 0 && mine.Count < 14))
                {
                    string cid = $"n{node}c{n++}";
                    try
                    {
                        var r = engines[node].Add(config, Att($"node{node}", cid), deadline);
                        held[cid] = (node, cid, IpMath.Format(r.Addresses[0].Address.Address));
                        mine.Add(cid);
                        Interlocked.Increment(ref adds);
                        // A repeated ADD (the runtime retrying) answers the same address.
                        if (random.Next(8) == 0 && IpMath.Format(engines[node].Add(config, Att($"node{node}", cid), deadline).Addresses[0].Address.Address) != held[cid].Ip)
                            problems.Enqueue($"repeated ADD of {cid} answered another address");
                    }
                    catch (CniException e) when (e.Code == CniErrorCode.AddressesExhausted)
                    {
                        Interlocked.Increment(ref exhausted);
                    }
                    catch (Exception e) when (e is StoreUnavailableException or CniException)
                    {
                        // The ADD failed: the runtime calls DEL for it later (it may or may not have committed).
                        uncertain[cid] = (node, cid);
                        Interlocked.Increment(ref failures);
                        reasons.AddOrUpdate(Reason(e), 1, (_, c) => c + 1);
                        Thread.Sleep(100); // the runtime retries later, not in a loop
                    }
                }
                else
                {
                    string cid = mine[random.Next(mine.Count)];
                    try
                    {
                        engines[node].Release(config, Att($"node{node}", cid), deadline);
                        held.TryRemove(cid, out _);
                        mine.Remove(cid);
                        Interlocked.Increment(ref dels);
                    }
                    catch (Exception e) when (e is StoreUnavailableException or CniException)
                    {
                        Interlocked.Increment(ref failures); // still held; retried by a later DEL
                        reasons.AddOrUpdate(Reason(e), 1, (_, c) => c + 1);
                        Thread.Sleep(100);
                    }
                }
            }
        }

        void Oracle()
        {
            while (DateTime.UtcNow < until)
            {
                try
                {
                    var view = ClusterView.Read(stores[0], configs[0], DateTimeOffset.UtcNow.AddSeconds(3));
                    foreach (var p in view.Check())
                        problems.Enqueue($"revision {view.Revision}: {p}");
                    Interlocked.Increment(ref checks);
                }
                catch (StoreUnavailableException)
                {
                }
                Thread.Sleep(300);
            }
        }

        var faults = new List<string>();
        void Faults()
        {
            var random = new Random(7);
            Thread.Sleep(2000);
            int step = 0;
            while (DateTime.UtcNow < until.AddSeconds(-3))
            {
                var leader = cluster.Leader();
                switch (step++ % 3)
                {
                    case 0 when leader is not null:
                        faults.Add($"kill leader {leader.Name}");
                        cluster.Kill(leader);
                        Thread.Sleep(1500);
                        cluster.Start(leader);
                        break;
                    case 1:
                        var follower = cluster.Members.First(m => m != leader);
                        faults.Add($"restart member {follower.Name}");
                        cluster.Restart(follower);
                        break;
                    case 2 when leader is not null:
                        faults.Add($"pause leader {leader.Name} 2 s");
                        cluster.Pause(leader);
                        Thread.Sleep(2000);
                        cluster.Resume(leader);
                        break;
                }
                Thread.Sleep(1500 + random.Next(1500));
            }
        }

        var threads = Enumerable.Range(0, Nodes).Select(i => new Thread(() => Worker(i))).Append(new Thread(Oracle)).Append(new Thread(Faults)).ToList();
        var clock = Stopwatch.StartNew();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        cluster.WaitHealthy(TimeSpan.FromSeconds(20));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0} s, {Nodes} nodes: {adds} ADDs, {dels} DELs, {failures} failed (faults), {exhausted} exhausted, {checks} oracle reads; faults: {string.Join("; ", faults)}");
        foreach (var (why, count) in reasons.OrderByDescending(r => r.Value).Take(8))
            output.WriteLine($"  {count} x {why}");

        // The runtime's DEL for every failed ADD, retried until etcd answers.
        foreach (var (cid, (node, _)) in uncertain)
            Retry(() => engines[node].Release(configs[node], Att($"node{node}", cid), DateTimeOffset.UtcNow.AddSeconds(5)));

        var final = ClusterView.Read(stores[0], configs[0], Soon);
        Assert.Empty(problems);
        Assert.Empty(final.Check());
        // Nothing lost: every attachment the runtime holds is live in etcd with the address it was given; nothing else is.
        var live = final.LiveAttachments.ToDictionary(a => a.Record.Owner!.ContainerId, a => IpMath.Format(a.Record.Addresses[0].Address.Address));
        Assert.Equal(held.Keys.Order(StringComparer.Ordinal), live.Keys.Order(StringComparer.Ordinal));
        foreach (var (cid, h) in held)
            Assert.Equal(h.Ip, live[cid]);
        // GC with each node's valid list releases nothing (nothing leaked) ...
        for (int i = 0; i < Nodes; i++)
        {
            var valid = held.Values.Where(h => h.Node == i).Select(h => (h.Cid, "eth0")).ToList();
            Assert.Empty(engines[i].GarbageCollect(configs[i], $"node{i}", valid, "boot1", long.MaxValue / 2, Soon));
        }
        // ... and filling the range from several nodes yields exactly what is left.
        int filled = 0;
        for (int i = 0; ; i++)
        {
            try
            {
                engines[i % Nodes].Add(configs[i % Nodes], Att($"node{i % Nodes}", $"fill{i}"), Soon);
                filled++;
            }
            catch (CniException e) when (e.Code == CniErrorCode.AddressesExhausted)
            {
                break;
            }
        }
        Assert.Equal(Capacity - held.Count, filled);
        Assert.Empty(ClusterView.Read(stores[0], configs[0], Soon).Check());
        foreach (var s in stores)
            s.Dispose();
    }

    static string Reason(Exception e) => (e is CniException c ? $"code {c.Code}: " : "store: ") + new string(e.Message.Take(140).ToArray());

    static void Retry(Action action)
    {
        for (int i = 0; ; i++)
        {
            try
            {
                action();
                return;
            }
            catch (Exception e) when ((e is StoreUnavailableException || e is CniException { Code: CniErrorCode.TryAgainLater }) && i < 10)
            {
                Thread.Sleep(500);
            }
        }
    }
}
