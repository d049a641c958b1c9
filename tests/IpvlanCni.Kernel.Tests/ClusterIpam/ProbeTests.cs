using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Plugin;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;
using Xunit.Abstractions;

namespace IpvlanCni.Kernel.Tests.ClusterIpam;

/// <summary>
/// ipam.probe: a node on a wire (its ens10 a veth end on a bridge) shared with a foreign host that already holds an
/// address of the pod range, as a machine nobody told the IPAM about would. With probing on, ADD sends ARP probes
/// (IPv4) and duplicate address detection solicitations (IPv6) from the master and skips what is answered.
/// </summary>
public sealed class ProbeTests : KernelTest, IDisposable
{
    readonly ITestOutputHelper _output;
    readonly ClusterLab _lab;

    public ProbeTests(ITestOutputHelper output)
    {
        _output = output;
        _lab = new ClusterLab(nodes: 1, etcd: false);
    }

    ClusterNode Node => _lab.Nodes[0];

    public void Dispose() => _lab.Dispose();

    JsonObject Config(string network, JsonNode? probe, bool dualStack = false)
    {
        var config = _lab.HostLocalConfig(Node, network, dualStack);
        if (probe is not null)
            config["ipam"]!["probe"] = probe;
        return config;
    }

    (Pod Pod, CniCall Added, TimeSpan Took) Add(JsonObject config, string containerId)
    {
        var pod = _lab.AddPod(Node);
        var clock = Stopwatch.StartNew();
        var added = Node.Cni.Add(config, pod, containerId);
        return (pod, added, clock.Elapsed);
    }

    static List<IpPrefix> PodAddresses(Pod pod, AddressFamily family)
    {
        using var client = RouteClient.OpenIn(pod.Namespace);
        return client.TryGetLink("eth0") is { } eth0
            ? [.. client.ListAddresses(family, eth0.Index).Where(a => a.Scope == RouteScope.Universe).Select(a => a.Prefix)]
            : [];
    }

    string Reservation(string network, string address)
    {
        string file = Path.Combine(Node.IpamDir, network, address);
        return File.Exists(file) ? File.ReadAllText(file).Replace("\r\n", "/") : "(none)";
    }

    [Fact]
    public void WithProbingOnAddSkipsTheAddressAnotherHostAnswersForAndItStaysSetAside()
    {
        var foreign = _lab.AddForeignHost(IpPrefix.Parse("10.77.0.100/24"));
        var config = Config("probe-on", new JsonObject { ["timeoutMs"] = 300 });

        var (pod, added, took) = Add(config, "c1");
        added.Succeeded("ADD c1");
        _output.WriteLine($"ADD with probing (300 ms), one answered address skipped: {took.TotalMilliseconds:0} ms");
        Assert.Equal(IPAddress.Parse("10.77.0.101"), added.Address());
        Assert.Equal([IpPrefix.Parse("10.77.0.101/24")], PodAddresses(pod, AddressFamily.InterNetwork));
        // The answered address is kept reserved for the conflict, not for the pod.
        Assert.Equal("ipvlan-cni-probe-conflict/wire", Reservation("probe-on", "10.77.0.100"));
        Assert.Equal("c1/eth0", Reservation("probe-on", "10.77.0.101"));
        // Both are on the wire, each answering for its own address.
        Assert.True(Programs.Ping(pod.Namespace, IPAddress.Parse("10.77.0.100"), 3), "the pod cannot reach the foreign host");
        Assert.True(Programs.Ping(foreign, IPAddress.Parse("10.77.0.101"), 3), "the foreign host cannot reach the pod");

        var (pod2, second, _) = Add(config, "c2");
        Assert.Equal(IPAddress.Parse("10.77.0.102"), second.Succeeded("ADD c2").Address());
        Node.Cni.Del(config, pod, "c1").Succeeded("DEL c1");
        Node.Cni.Del(config, pod2, "c2").Succeeded("DEL c2");
        Assert.Equal("(none)", Reservation("probe-on", "10.77.0.101"));
        Assert.Equal("ipvlan-cni-probe-conflict/wire", Reservation("probe-on", "10.77.0.100"));
        // GC keeps only the runtime's attachments: the conflict is forgotten, and the next ADD that gets it probes again.
        Node.Cni.Gc(config).Succeeded("GC");
        Assert.Equal("(none)", Reservation("probe-on", "10.77.0.100"));
    }

    [Fact]
    public void WithProbingOffAddHandsOutTheAnsweredAddressAsBefore()
    {
        _lab.AddForeignHost(IpPrefix.Parse("10.77.0.100/24"));
        var config = Config("probe-off", probe: null);
        var (pod, added, took) = Add(config, "c1");
        added.Succeeded("ADD c1");
        _output.WriteLine($"ADD without probing: {took.TotalMilliseconds:0} ms");
        // The duplicate the probe exists for: host-local knows nothing of the foreign host.
        Assert.Equal([IpPrefix.Parse("10.77.0.100/24")], PodAddresses(pod, AddressFamily.InterNetwork));
        // "probe": false is the same as no key.
        var (pod2, off, _) = Add(Config("probe-off", JsonValue.Create(false)), "c2");
        Assert.Equal(IPAddress.Parse("10.77.0.101"), off.Succeeded("ADD c2").Address());
        Node.Cni.Del(config, pod, "c1").Succeeded("DEL c1");
        Node.Cni.Del(config, pod2, "c2").Succeeded("DEL c2");
    }

    [Fact]
    public void Ipv6ProbeIsDuplicateAddressDetectionAndSkipsTheAnsweredAddress()
    {
        var foreign = _lab.AddForeignHost(IpPrefix.Parse("fd77::100/64"));
        var config = Config("probe-v6", JsonValue.Create(true), dualStack: true);
        var (pod, added, took) = Add(config, "c1");
        added.Succeeded("ADD c1");
        _output.WriteLine($"dual-stack ADD with probing (default timeout), the IPv6 address answered: {took.TotalMilliseconds:0} ms");
        var v6 = Assert.Single(PodAddresses(pod, AddressFamily.InterNetworkV6));
        Assert.Equal(IpPrefix.Parse("fd77::101/64"), v6);
        Assert.Single(PodAddresses(pod, AddressFamily.InterNetwork));
        Assert.Equal("ipvlan-cni-probe-conflict/wire", Reservation("probe-v6", "fd77::100"));
        Assert.True(Programs.Ping(foreign, IPAddress.Parse("fd77::101"), 3), "the foreign host cannot reach the pod's IPv6 address");
        Node.Cni.Del(config, pod, "c1").Succeeded("DEL c1");
    }

    [Fact]
    public void TheProbeTimeoutBoundsAddAndAnsweredAttemptsEndInCode101WithNothingConfigured()
    {
        // Nobody answers: ADD waits out the probe's timeout once, and no more.
        var quiet = Config("probe-quiet", new JsonObject { ["timeoutMs"] = 1500 });
        var (pod, added, took) = Add(quiet, "c1");
        added.Succeeded("ADD c1");
        _output.WriteLine($"ADD with a 1500 ms probe that nobody answers: {took.TotalMilliseconds:0} ms");
        Assert.InRange(took.TotalMilliseconds, 1500, 1500 + 5000);
        Node.Cni.Del(quiet, pod, "c1").Succeeded("DEL c1");

        // Every address tried is answered: after `attempts` probes ADD gives up (101) and configures nothing.
        _lab.AddForeignHost(IpPrefix.Parse("10.77.0.100/24"), IpPrefix.Parse("10.77.0.101/24"), IpPrefix.Parse("10.77.0.102/24"));
        var busy = Config("probe-busy", new JsonObject { ["timeoutMs"] = 500, ["attempts"] = 3 });
        var (pod2, refused, took2) = Add(busy, "c2");
        _output.WriteLine($"ADD refused after 3 answered probes: {took2.TotalMilliseconds:0} ms");
        Assert.Contains("answered", refused.FailedWith(101));
        Assert.Empty(PodAddresses(pod2, AddressFamily.InterNetwork));
        using (var client = RouteClient.OpenIn(pod2.Namespace))
            Assert.Null(client.TryGetLink("eth0"));
        Assert.Equal("ipvlan-cni-probe-conflict/wire", Reservation("probe-busy", "10.77.0.100"));
        Assert.Equal("ipvlan-cni-probe-conflict/wire", Reservation("probe-busy", "10.77.0.101"));
        Assert.Equal("ipvlan-cni-probe-conflict/wire", Reservation("probe-busy", "10.77.0.102"));
        Assert.False(Directory.Exists(Path.Combine(Node.StateDir, "attachments", "probe-busy")) &&
            Directory.EnumerateFiles(Path.Combine(Node.StateDir, "attachments", "probe-busy")).Any(), "the refused ADD left a record");
        // Replies arrive in microseconds: giving up took nowhere near 3 timeouts.
        Assert.InRange(took2.TotalMilliseconds, 0, 3 * 500 + 5000);
    }

    [Fact]
    public void AProbeValueThatIsNotTrueFalseOrAKnownObjectIsCode7NamingTheKey()
    {
        var (pod, bad, _) = Add(Config("probe-bad", new JsonObject { ["timeoutMs"] = 5 }), "c1");
        Assert.Contains("ipam.probe.timeoutMs", bad.FailedWith(7));
        Assert.Contains("ipam.probe", Add(Config("probe-bad", JsonValue.Create("yes")), "c2").Added.FailedWith(7));
        Assert.Empty(PodAddresses(pod, AddressFamily.InterNetwork));
        Assert.False(Directory.Exists(Path.Combine(Node.IpamDir, "probe-bad")) &&
            Directory.EnumerateFiles(Path.Combine(Node.IpamDir, "probe-bad"), "10.*").Any(), "a refused configuration reserved an address");
    }
}
