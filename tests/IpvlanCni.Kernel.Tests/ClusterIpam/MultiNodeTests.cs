using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.ClusterIpam;

/// <summary>
/// Three nodes on one wire (their ens10 veth ends on one bridge), a one-member etcd on the wire, and each node's
/// own agent (the published `ipvlan-cni agent`, its socket, node name and folders): built once for the class; each
/// test uses a network of its own, so tests share nothing in etcd.
/// </summary>
public sealed class ClusterFixture : IDisposable
{
    public ClusterFixture()
    {
        Sandbox.Require();
        Lab = new ClusterLab(nodes: 3);
    }

    public ClusterLab Lab { get; }

    public void Dispose() => Lab.Dispose();
}

/// <summary>
/// IPAM type "ipvlan-cni-ipam" across nodes, with real pods: the published plugin attaches ipvlan l2 slaves of each
/// node's NIC, each node's agent allocates through etcd, and pods on different nodes ping each other over the wire.
/// </summary>
public sealed class MultiNodeTests(ClusterFixture fixture) : KernelTest, IClassFixture<ClusterFixture>
{
    readonly ClusterLab _lab = fixture.Lab;

    sealed record Attached(ClusterNode Node, Pod Pod, string ContainerId, IPAddress Address);

    Attached Add(ClusterNode node, string network, string containerId, int first = 100, int last = 199)
    {
        var pod = _lab.AddPod(node);
        var added = node.Cni.Add(_lab.Config(node, network, first, last), pod, containerId).Succeeded($"ADD {containerId} on {node.Name}");
        return new Attached(node, pod, containerId, added.Addresses.Single().Address);
    }

    void Del(Attached a, string network, int first = 100, int last = 199) =>
        a.Node.Cni.Del(_lab.Config(a.Node, network, first, last), a.Pod, a.ContainerId).Succeeded($"DEL {a.ContainerId} on {a.Node.Name}");

    /// <summary>What the kernel shows in the pod: eth0, an up ipvlan l2 slave of its node's ens10, holding exactly the address in /24.</summary>
    static void AssertAttached(Attached a)
    {
        using var pod = RouteClient.OpenIn(a.Pod.Namespace);
        var link = pod.GetLink("eth0");
        Assert.Equal("ipvlan", link.Kind);
        Assert.Equal(IpvlanMode.L2, link.IpvlanMode);
        Assert.True(link.IsUp, $"{a.ContainerId}: eth0 is down");
        Assert.NotNull(link.ParentNamespaceId);
        Assert.Equal(a.Node.NicLink.Index, link.ParentIndex);
        var held = Assert.Single(pod.ListAddresses(AddressFamily.InterNetwork, link.Index));
        Assert.Equal(new IpPrefix(a.Address, 24), held.Prefix);
    }

    static bool HasEth0(Pod pod)
    {
        using var client = RouteClient.OpenIn(pod.Namespace);
        return client.TryGetLink("eth0") is not null;
    }

    static void AssertPing(Attached from, Attached to)
    {
        var ping = Programs.RunPing(from.Pod.Namespace, to.Address, 10);
        Assert.True(ping.Succeeded, $"{from.ContainerId} on {from.Node.Name} ({from.Address}) -> {to.ContainerId} on {to.Node.Name} ({to.Address}): {ping}");
    }

    List<string> ShownAddresses(string network) => [.. Shown(network).Select(a => $"{a.Node} {a.Address}")];

    List<(string Node, string Address, string ContainerId)> Shown(string network)
    {
        var shown = _lab.Operator(_lab.Nodes[0], _lab.Config(_lab.Nodes[0], network), "show", "--json");
        Assert.True(shown.Succeeded, $"ipam show: {shown}");
        using var doc = JsonDocument.Parse(shown.StdOut);
        return [.. doc.RootElement.GetProperty("allocations").EnumerateArray()
            .Select(a => (a.GetProperty("node").GetString()!, a.GetProperty("address").GetString()!, a.GetProperty("containerId").GetString()!))];
    }

    void AssertConsistent(string network)
    {
        var check = _lab.Operator(_lab.Nodes[1], _lab.Config(_lab.Nodes[1], network), "check");
        Assert.True(check.Succeeded, $"ipam check: {check}");
        Assert.Contains("consistent at revision", check.StdOut);
    }

    [Fact]
    public void PodsOnEveryNodeGetDistinctAddressesOfOneSubnetAndPingAcrossNodes()
    {
        const string network = "spread";
        var pods = _lab.Nodes.SelectMany(node => Enumerable.Range(1, 2).Select(i => Add(node, network, $"{node.Short}-spread-{i}"))).ToList();

        Assert.Equal(pods.Count, pods.Select(p => p.Address).Distinct().Count());
        foreach (var p in pods)
        {
            Assert.True(ClusterLab.Subnet.Contains(p.Address), $"{p.Address} is outside {ClusterLab.Subnet}");
            Assert.InRange(p.Address.GetAddressBytes()[3], 100, 199);
            AssertAttached(p);
        }
        // Every pod reaches a pod of the next node over the wire, and its node's other pod.
        for (int i = 0; i < pods.Count; i++)
            AssertPing(pods[i], pods[(i + 2) % pods.Count]);
        AssertPing(pods[0], pods[1]);

        // etcd's view, through the operator commands run on a node: each pod's address under its own node.
        Assert.Equal(pods.Select(p => $"{p.Node.Name} {p.Address}").Order(), ShownAddresses(network).Order());
        AssertConsistent(network);

        foreach (var p in pods)
            Del(p, network);
        Assert.All(pods, p => Assert.False(HasEth0(p.Pod), $"{p.ContainerId}: eth0 is still there after DEL"));
        Assert.Empty(ShownAddresses(network));
    }

    [Fact]
    public void DelFencesALateAddAndANewAddGetsADistinctAddressThatReachesTheOtherNodes()
    {
        const string network = "readd";
        var pods = _lab.Nodes.Select(node => Add(node, network, $"{node.Short}-readd")).ToList();
        var second = pods[1];

        Del(second, network);
        Assert.False(HasEth0(second.Pod), "eth0 is still there after DEL");
        Assert.DoesNotContain($"{second.Node.Name} {second.Address}", ShownAddresses(network));
        var ping = Programs.RunPing(pods[0].Pod.Namespace, second.Address, 1);
        Assert.False(ping.Succeeded, $"{second.Address} still answers after DEL: {ping}");

        // A late ADD of the deleted attachment is fenced by its tombstone (code 3) and configures nothing.
        var late = second.Node.Cni.Add(_lab.Config(second.Node, network), second.Pod, second.ContainerId);
        Assert.Contains("a late ADD does not bring it back", late.FailedWith(3));
        Assert.False(HasEth0(second.Pod), "the fenced ADD created eth0");
        // The runtime's next sandbox (a new container ID) on the same node, then a new pod on another node.
        _lab.RemovePod(second.Pod);
        var again = Add(second.Node, network, $"{second.ContainerId}-2");
        var third = Add(pods[2].Node, network, $"{pods[2].Node.Short}-readd-2");
        var now = new[] { pods[0], again, pods[2], third };
        Assert.Equal(now.Length, now.Select(p => p.Address).Distinct().Count());
        foreach (var p in now)
            AssertAttached(p);
        AssertPing(again, pods[0]);
        AssertPing(pods[2], again);
        AssertPing(third, pods[0]);
        AssertConsistent(network);

        foreach (var p in now)
            Del(p, network);
    }

    [Fact]
    public void FillingTheRangeFromEveryNodeGivesExactlyItsCapacityThenCode101()
    {
        // 10.77.0.100-109: 10 addresses in blocks of 4 (.100-103, .104-107, and .108-109 of .108-111).
        const string network = "fill";
        const int first = 100, last = 109, capacity = 10;
        var pods = new List<Attached>();
        CniCall? refused = null;
        Pod? refusedPod = null;
        for (int i = 0; refused is null && i < capacity + 3; i++)
        {
            var node = _lab.Nodes[i % _lab.Nodes.Count];
            var pod = _lab.AddPod(node);
            var added = node.Cni.Add(_lab.Config(node, network, first, last), pod, $"{node.Short}-fill-{i}");
            if (added.ExitCode == 0)
                pods.Add(new Attached(node, pod, $"{node.Short}-fill-{i}", added.Addresses.Single().Address));
            else
                (refused, refusedPod) = (added, pod);
        }

        Assert.Equal(capacity, pods.Count);
        Assert.Equal(capacity, pods.Select(p => p.Address).Distinct().Count());
        Assert.All(pods, p => Assert.InRange(p.Address.GetAddressBytes()[3], first, last));
        // Every node took addresses, though the first nodes' blocks cover most of the range: the rest borrowed.
        Assert.All(_lab.Nodes, n => Assert.Contains(pods, p => p.Node == n));
        Assert.NotNull(refused);
        refused!.FailedWith(101);
        Assert.False(HasEth0(refusedPod!), "the refused ADD left eth0 in its pod");
        Assert.Equal(capacity, ShownAddresses(network).Count);
        AssertConsistent(network);
        foreach (var p in pods)
            AssertAttached(p);
        AssertPing(pods[0], pods[^1]);

        // A DEL on one node frees an address another node then gets.
        var freed = pods[0];
        Del(freed, network, first, last);
        var taker = _lab.Nodes.First(n => n != freed.Node);
        var retry = Add(taker, network, $"{taker.Short}-fill-retry", first, last);
        Assert.Equal(freed.Address, retry.Address);
        AssertAttached(retry);
        AssertPing(retry, pods[1]);

        foreach (var p in pods.Skip(1).Append(retry))
            Del(p, network, first, last);
        Assert.Empty(ShownAddresses(network));
    }

    [Fact]
    public void WithProbingOnAnAddressAForeignHostAnswersForIsSetAsideForEveryNode()
    {
        // 10.77.0.120-122, and a machine on the wire that no IPAM knows holds .121.
        const string network = "probe";
        const int first = 120, last = 122;
        var foreign = _lab.AddForeignHost(IpPrefix.Parse("10.77.0.121/24"));
        try
        {
            JsonObject Config(ClusterNode node)
            {
                var config = _lab.Config(node, network, first, last);
                config["ipam"]!["probe"] = new JsonObject { ["timeoutMs"] = 300 };
                return config;
            }
            var pods = new List<Attached>();
            foreach (var node in _lab.Nodes.Take(2))
            {
                var pod = _lab.AddPod(node);
                var added = node.Cni.Add(Config(node), pod, $"{node.Short}-probe").Succeeded($"ADD on {node.Name}");
                pods.Add(new Attached(node, pod, $"{node.Short}-probe", added.Addresses.Single().Address));
            }
            Assert.Equal(["10.77.0.120", "10.77.0.122"], pods.Select(p => p.Address.ToString()).Order());
            foreach (var p in pods)
                AssertAttached(p);
            // The third node finds only .121, which is answered: set aside, and nothing else is free.
            var third = _lab.Nodes[2];
            var thirdPod = _lab.AddPod(third);
            third.Cni.Add(Config(third), thirdPod, $"{third.Short}-probe").FailedWith(101);
            Assert.False(HasEth0(thirdPod), "the refused ADD left eth0");

            var shown = Shown(network);
            Assert.Equal(3, shown.Count);
            var conflict = Assert.Single(shown, a => a.Address == "10.77.0.121");
            Assert.StartsWith("ipvlan-cni-probe-conflict-", conflict.ContainerId);
            AssertConsistent(network);
            Assert.True(Programs.Ping(pods[0].Pod.Namespace, IPAddress.Parse("10.77.0.121"), 3), "the pod cannot reach the foreign host");
            AssertPing(pods[0], pods[1]);

            foreach (var p in pods)
                p.Node.Cni.Del(Config(p.Node), p.Pod, p.ContainerId).Succeeded("DEL");
            Assert.Equal(["10.77.0.121"], Shown(network).Select(a => a.Address));
        }
        finally
        {
            // Other tests of the class use the range without probing: the foreign host leaves the wire.
            _lab.Remove(foreign);
        }
    }
}
