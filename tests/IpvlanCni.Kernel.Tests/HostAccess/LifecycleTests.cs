using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using IpvlanCni.Cni;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Plugin;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.HostAccess;

/// <summary>
/// Host access and egress through the node leave nothing behind: the last DEL, GC, a failed ADD's rollback and
/// parallel ADDs all end with the node exactly as it was (links, addresses, routes, nat tables), and CHECK notices
/// when a host route or the NAT rules are gone. Segment 0 of the design note's node is l2 on a VLAN the plugin
/// creates, 1 is l3 on a master the node has.
/// </summary>
public sealed class LifecycleTests : KernelTest
{
    /// <summary>Everything on: host access, the gateway on the node, SNAT.</summary>
    static JsonObject FullConfig(Lab lab, Segment segment, string network, int subnet = 0)
    {
        var config = lab.NetworkConfig(network, segment, subnet);
        Setup.HostAccess.Configure(config);
        Setup.EgressThroughNode.Configure(config);
        return config;
    }

    /// <summary>
    /// The node before its first pod. It already forwards, as Kubernetes nodes do: egress "host" turns forwarding
    /// on and never off (the node may route for others), and IPv6 forwarding adds subnet-router anycast routes.
    /// </summary>
    static NodeSnapshot SnapshotBeforeFirstAdd(Lab lab)
    {
        lab.Node.WriteSysctl("net.ipv4.ip_forward", "1");
        lab.Node.WriteSysctl("net.ipv6.conf.all.forwarding", "1");
        return NodeSnapshot.Take(lab);
    }

    static LinkInfo HostSideSlave(Lab lab, Segment segment)
    {
        var master = lab.NodeClient.GetLink(segment.Master);
        // The master's port link (down, addressless, Masters.PortName) is an ipvlan slave of ours too, but no host side.
        var slaves = lab.NodeClient.ListLinks().Where(l => l.Kind == "ipvlan" && l.ParentIndex == master.Index && l.Name != $"ipvlp{master.Index}").ToList();
        return Assert.Single(slaves);
    }

    static bool HasHostRoute(Lab lab, IPAddress podAddress) =>
        lab.NodeClient.ListRoutes().Any(r => r.Destination.Equals(IpPrefix.Host(podAddress)));

    /// <summary>The lines of a family's nat table that mention a chain (its declaration, its rules, jumps to it).</summary>
    static List<string> NatRulesMentioning(Lab lab, AddressFamily family, string chain) =>
        [.. NodeSnapshot.ReadNatRules(lab.Node, family).Where(l => l.Contains(chain, StringComparison.Ordinal))];

    static void AssertNoRecords(Lab lab)
    {
        foreach (string dir in new[] { "attachments", "masters" })
        {
            string path = Path.Combine(lab.StateDir, dir);
            var left = Directory.Exists(path) ? Directory.GetFiles(path, "*", SearchOption.AllDirectories) : [];
            Assert.True(left.Length == 0, $"records left in {path}: {string.Join(", ", left)}");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void The_last_del_returns_links_addresses_routes_and_nat_to_exactly_what_they_were(int segmentIndex)
    {
        using var lab = new Lab(Layout.DesignNote);
        var segment = lab.Layout.Segments[segmentIndex];
        var before = SnapshotBeforeFirstAdd(lab);
        var config = FullConfig(lab, segment, "full");
        var a = lab.AddPod();
        var b = lab.AddPod();
        var addedA = lab.Cni.Add(config, a, "ca").Succeeded("ADD a");
        lab.Cni.Add(config, b, "cb").Succeeded("ADD b");

        var slave = HostSideSlave(lab, segment);
        Assert.True(slave.NoArp, "the host-side slave must be NOARP");
        var slaveAddresses = lab.NodeClient.ListAddresses(linkIndex: slave.Index).Select(x => x.Prefix).ToHashSet();
        foreach (var family in Enum.GetValues<Family>())
            Assert.Contains(IpPrefix.Host(lab.NodePrimaryAddress(family).Address), slaveAddresses);
        Assert.All(addedA.Addresses, p => Assert.True(HasHostRoute(lab, p.Address), $"host route to {p.Address}"));
        Assert.NotEmpty(NodeSnapshot.Take(lab).DifferencesFrom(before));

        lab.Cni.Del(config, b, "cb").Succeeded("DEL b");
        Assert.Equal(slave.Index, HostSideSlave(lab, segment).Index); // a still needs it
        lab.Cni.Del(config, a, "ca").Succeeded("DEL a");

        NodeSnapshot.Take(lab).AssertSameAs(before, "the last DEL");
        AssertNoRecords(lab);
    }

    [Fact]
    public void Gc_removes_the_host_routes_and_nat_rules_of_dead_attachments_only()
    {
        using var lab = new Lab(Layout.DesignNote);
        var segment = lab.Layout.Segments[0];
        var before = SnapshotBeforeFirstAdd(lab);
        var kept = FullConfig(lab, segment, "kept");
        var dying = FullConfig(lab, segment, "dying", subnet: 1);
        lab.Cni.Add(kept, lab.AddPod(), "c-kept").Succeeded("ADD kept");
        var dead = lab.Cni.Add(dying, lab.AddPod(), "c-dead").Succeeded("ADD dead");
        var alive = lab.Cni.Add(dying, lab.AddPod(), "c-alive").Succeeded("ADD alive");
        string dyingChain = Masquerade.ChainName("dying");

        lab.Cni.Gc(dying, ("c-alive", "eth0")).Succeeded("GC keeping c-alive");
        Assert.All(dead.Addresses, p => Assert.False(HasHostRoute(lab, p.Address), $"host route to dead {p.Address}"));
        Assert.All(alive.Addresses, p => Assert.True(HasHostRoute(lab, p.Address), $"host route to alive {p.Address}"));
        Assert.NotEmpty(NatRulesMentioning(lab, AddressFamily.InterNetwork, dyingChain));

        lab.Cni.Gc(dying).Succeeded("GC keeping nothing");
        Assert.All(alive.Addresses, p => Assert.False(HasHostRoute(lab, p.Address), $"host route to {p.Address}"));
        Assert.Empty(NatRulesMentioning(lab, AddressFamily.InterNetwork, dyingChain));
        Assert.Empty(NatRulesMentioning(lab, AddressFamily.InterNetworkV6, dyingChain));
        Assert.NotEmpty(NatRulesMentioning(lab, AddressFamily.InterNetwork, Masquerade.ChainName("kept")));
        HostSideSlave(lab, segment); // the kept pod still uses it

        lab.Cni.Gc(kept).Succeeded("GC of the last network");
        NodeSnapshot.Take(lab).AssertSameAs(before, "GC of the last network");
        AssertNoRecords(lab);
    }

    [Fact]
    public void Check_fails_when_a_host_route_or_the_nat_rules_are_gone()
    {
        using var lab = new Lab(Layout.DesignNote);
        var segment = lab.Layout.Segments[0];
        var config = FullConfig(lab, segment, "checked");
        var pod = lab.AddPod();
        var added = lab.Cni.Add(config, pod, "c1").Succeeded("ADD");
        lab.Cni.Check(config, pod, "c1", added).Succeeded("CHECK right after ADD");

        var slave = HostSideSlave(lab, segment);
        var hostRoute = new RouteInfo(IpPrefix.Host(added.Addresses[0].Address)) { LinkIndex = slave.Index, Scope = RouteScope.Link };
        lab.NodeClient.DeleteRoute(hostRoute);
        var check = lab.Cni.Check(config, pod, "c1", added);
        Assert.True(check.ErrorCode == (int)CniErrorCode.CheckFailed, $"CHECK without the host route: {check}");
        lab.NodeClient.ReplaceRoute(hostRoute);
        lab.Cni.Check(config, pod, "c1", added).Succeeded("CHECK with the route back");

        // The node address on the host-side slave, and the pod's own route to it.
        var nodeAddress = lab.NodeClient.ListAddresses(AddressFamily.InterNetwork, slave.Index).First();
        lab.NodeClient.DeleteAddress(nodeAddress);
        check = lab.Cni.Check(config, pod, "c1", added);
        Assert.True(check.ErrorCode == (int)CniErrorCode.CheckFailed, $"CHECK without the node address on the slave: {check}");
        lab.NodeClient.AddAddress(nodeAddress with { Flags = AddressFlags.NoDad });
        using (var podClient = RouteClient.OpenIn(pod.Namespace))
        {
            var eth0 = podClient.GetLink("eth0");
            var toNode = podClient.ListRoutes(AddressFamily.InterNetwork)
                .Single(r => r.Destination.Equals(nodeAddress.Prefix) && r.LinkIndex == eth0.Index);
            podClient.DeleteRoute(toNode);
            check = lab.Cni.Check(config, pod, "c1", added);
            Assert.True(check.ErrorCode == (int)CniErrorCode.CheckFailed, $"CHECK without the pod's route to the node: {check}");
            podClient.AddRoute(toNode);
        }
        lab.Cni.Check(config, pod, "c1", added).Succeeded("CHECK with the node address and route back");

        var flush = Programs.Run(lab.Node, "/usr/sbin/iptables-legacy", ["-w", "-t", "nat", "-F", Masquerade.ChainName("checked")]);
        Assert.True(flush.Succeeded, flush.ToString());
        check = lab.Cni.Check(config, pod, "c1", added);
        Assert.True(check.ErrorCode == (int)CniErrorCode.NatFailed, $"CHECK without the NAT rules: {check}");

        lab.Cni.Del(config, pod, "c1").Succeeded("DEL");
    }

    [Theory]
    [InlineData("host-side-ready", 0)]
    [InlineData("host-side-ready", 1)]
    [InlineData("nat-applied", 0)]
    [InlineData("nat-applied", 1)]
    public void A_failed_add_rolls_back_the_host_side_and_nat(string step, int segmentIndex)
    {
        using var lab = new Lab(Layout.DesignNote);
        var segment = lab.Layout.Segments[segmentIndex];
        var before = SnapshotBeforeFirstAdd(lab);
        var config = FullConfig(lab, segment, "rollback");

        var failed = lab.Cni.Add(config, lab.AddPod(), "c1", env: new Dictionary<string, string> { [FaultPoints.Variable] = $"{step}:fail" });

        Assert.True(failed.ExitCode != 0, "the injected fault must fail ADD");
        Assert.Contains(step, failed.StdOut);
        NodeSnapshot.Take(lab).AssertSameAs(before, "the rolled back ADD");
        AssertNoRecords(lab);
    }

    [Fact]
    public void Ten_parallel_adds_on_one_master_share_one_host_side_slave_and_all_reach_the_node()
    {
        const int Pods = 10;
        using var lab = new Lab(Layout.DesignNote);
        var segment = lab.Layout.Segments[0]; // l2 on a VLAN the plugin creates: that races too
        var before = SnapshotBeforeFirstAdd(lab);
        var config = FullConfig(lab, segment, "crowd");
        var pods = Enumerable.Range(0, Pods).Select(_ => lab.AddPod()).ToList();

        var added = new CniCall[Pods];
        var threads = Enumerable.Range(0, Pods).Select(i => new Thread(() => added[i] = lab.Cni.Add(config, pods[i], $"c{i}"))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.All(added, a => a.Succeeded());
        Assert.Equal(Pods * 2, added.SelectMany(a => a.Addresses).Distinct().Count());
        HostSideSlave(lab, segment);
        foreach (var pod in pods)
            foreach (var family in Enum.GetValues<Family>())
                Assert.True(Programs.Ping(pod.Namespace, lab.NodePrimaryAddress(family).Address), $"{pod.Path} -> node {family}");
        string chain = Masquerade.ChainName("crowd");
        foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
            Assert.Single(NatRulesMentioning(lab, family, chain), l => l.StartsWith("-A POSTROUTING", StringComparison.Ordinal));

        var deleted = new CniCall[Pods];
        threads = Enumerable.Range(0, Pods).Select(i => new Thread(() => deleted[i] = lab.Cni.Del(config, pods[i], $"c{i}"))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.All(deleted, d => d.Succeeded());
        NodeSnapshot.Take(lab).AssertSameAs(before, "the parallel DELs");
        AssertNoRecords(lab);
    }
}
