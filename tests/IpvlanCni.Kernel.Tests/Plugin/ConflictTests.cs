using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>
/// All slaves of a master share the port's mode and flag, and the kernel silently switches them all when a new slave
/// asks for another: the plugin refuses instead, and the refusal changes nothing.
/// </summary>
public class ConflictTests : KernelTest
{
    [Theory]
    [InlineData("mode", "l3", "l2", "l3")]
    [InlineData("mode", "l3s", "l2", "l3s")]
    [InlineData("flag", "private", "bridge", "private")]
    [InlineData("flag", "vepa", "bridge", "vepa")]
    public void A_second_network_with_another_mode_or_flag_on_the_same_master_is_refused(string key, string value, string current, string asked)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var first = cni.Config("first", "10.10.0.0/24", "l2");
        var a = node.AddPod();
        var a2 = node.AddPod();
        cni.Add(first, a, "ca").Succeeded();
        var addressA2 = cni.Add(first, a2, "ca2").Succeeded().Address();

        var second = cni.Config("second", "10.20.0.0/24", "l2").With(key, value);
        var b = node.AddPod();
        var before = NodeSnapshot.Take(cni, a, a2, b);
        string message = cni.Add(second, b, "cb").FailedWith(7);
        Assert.Contains(key, message);
        Assert.Contains("\"ens10\"", message);
        Assert.Contains($"{key} {current}", message);
        Assert.Contains($"{key} {asked}", message);

        NodeSnapshot.Take(cni, a, a2, b).AssertSameAs(before, "a refused mode/flag conflict");
        Assert.Null(b.Client.TryGetLink("eth0"));
        Assert.False(cni.HasRecord("second", "cb"));
        Assert.False(Directory.Exists(Path.Combine(cni.DataDir, "second")) &&
            Directory.GetFiles(Path.Combine(cni.DataDir, "second")).Any(f => Path.GetFileName(f).StartsWith("10.", StringComparison.Ordinal)));
        var eth0 = a.Client.GetLink("eth0");
        Assert.Equal(IpvlanMode.L2, eth0.IpvlanMode);
        Assert.Equal(IpvlanFlag.Bridge, eth0.IpvlanFlag);
        Assert.True(a.Ping(addressA2));
    }

    /// <summary>The refusal also holds when the only slave on the master is one the plugin did not make.</summary>
    [Fact]
    public void A_foreign_ipvlan_slave_sets_the_masters_mode_too()
    {
        using var node = new TestNode();
        node.Client.CreateLink(new IpvlanLinkSpec("foreign0", node.Master.Index, IpvlanMode.L3));
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);
        string message = cni.Add(cni.Config("l2net", "10.10.0.0/24", "l2"), pod, "c1").FailedWith(7);
        Assert.Contains("foreign0", message);
        Assert.Contains("mode l3", message);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "a refused conflict with a foreign slave");
        Assert.Equal(IpvlanMode.L3, node.Client.GetLink("foreign0").IpvlanMode);
    }

    /// <summary>
    /// The reference plugin has no guard: its l3 ADD silently switches the port under our l2 pod. Our next l2 ADD
    /// asks the kernel (the master's port link), not our records: it refuses with the mode the port really runs and
    /// does not switch it back; CHECK of our pod reports the switch.
    /// </summary>
    [Fact]
    public void After_the_reference_plugin_switched_the_port_our_add_refuses_and_check_reports_our_pod()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var ours = cni.Config("ours", "10.10.0.0/24", "l2");
        var a = node.AddPod();
        var addedA = cni.Add(ours, a, "ca").Succeeded();
        cni.Check(ours, a, "ca", addedA).Succeeded();

        var theirs = cni.Config("theirs", "10.20.0.0/24", "l3", cniVersion: "1.0.0").With("type", "ipvlan").With("stateDir", null);
        var r = node.AddPod();
        cni.Run("ADD", theirs, "cr", r.Path, "eth0", plugin: "/usr/lib/cni/ipvlan").Succeeded();
        Assert.Equal(IpvlanMode.L3, a.Client.GetLink("eth0").IpvlanMode); // the kernel switched our pod

        var b = node.AddPod();
        var before = NodeSnapshot.Take(cni, a, r, b);
        string message = cni.Add(ours, b, "cb").FailedWith(7);
        Assert.Contains("runs ipvlan mode l3", message);
        Assert.Contains($"port link \"{PortName(node)}\"", message);
        NodeSnapshot.Take(cni, a, r, b).AssertSameAs(before, "an ADD refused after the reference plugin switched the port");
        Assert.Equal(IpvlanMode.L3, a.Client.GetLink("eth0").IpvlanMode);
        Assert.Contains("mode l3", cni.Check(ours, a, "ca", addedA).FailedWith(105));

        cni.Run("DEL", theirs, "cr", r.Path, "eth0", plugin: "/usr/lib/cni/ipvlan").Succeeded();
        cni.Del(ours, a, "ca").Succeeded();
    }

    /// <summary>
    /// A raw RTM_NEWLINK of another mode (what any tool does) switches the port too; the next ADD sees it in the
    /// port link. The port link lives exactly as long as the master's pods: down, no addresses, removed by the last DEL.
    /// </summary>
    [Fact]
    public void A_raw_netlink_slave_of_another_mode_is_seen_and_the_port_link_follows_the_masters_pods()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("portlife", "10.10.0.0/24", "l2");
        var a = node.AddPod();
        var before = NodeSnapshot.Take(cni, a);
        cni.Add(config, a, "ca").Succeeded();
        var port = node.Client.GetLink(PortName(node));
        Assert.Equal(("ipvlan", node.Master.Index, false, IpvlanMode.L2), (port.Kind, port.ParentIndex, port.IsUp, port.IpvlanMode));
        Assert.Empty(node.Client.ListAddresses(System.Net.Sockets.AddressFamily.Unspecified, port.Index));

        node.Client.CreateLink(new IpvlanLinkSpec("flip0", node.Master.Index, IpvlanMode.L3S));
        Assert.Equal(IpvlanMode.L3S, node.Client.GetLink(PortName(node)).IpvlanMode);
        var b = node.AddPod();
        Assert.Contains("mode l3s", cni.Add(config, b, "cb").FailedWith(7));
        node.Client.DeleteLink(node.Client.GetLink("flip0").Index);
        Assert.Equal(IpvlanMode.L3S, node.Client.GetLink(PortName(node)).IpvlanMode); // the port keeps the last mode set

        cni.Del(config, a, "ca").Succeeded();
        Assert.Null(node.Client.TryGetLink(PortName(node)));
        NodeSnapshot.Take(cni, a).AssertSameAs(before, "the master's last DEL");
    }

    static string PortName(TestNode node) => $"ipvlp{node.Master.Index}";

    [Fact]
    public void A_master_carrying_macvlan_is_refused_with_a_clear_error()
    {
        using var node = new TestNode();
        node.Client.CreateLink(new MacvlanLinkSpec("mv0", node.Master.Index));
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);
        string message = cni.Add(cni.Config("mac", "10.10.0.0/24"), pod, "c1").FailedWith(7);
        Assert.Contains("macvlan", message);
        Assert.Contains("ens10", message);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "a refused master carrying macvlan");
    }

    [Fact]
    public void An_existing_ifname_in_the_pod_is_refused_and_left_alone()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        pod.Client.CreateLink(new DummyLinkSpec("eth0"));
        var existing = pod.Client.GetLink("eth0");
        pod.Client.AddAddress(new AddressInfo(existing.Index, IpPrefix.Parse("192.168.7.7/24")));
        var before = NodeSnapshot.Take(cni, pod);

        string message = cni.Add(cni.Config("exists", "10.10.0.0/24"), pod, "c1").FailedWith(104);
        Assert.Contains("eth0", message);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD onto an existing CNI_IFNAME");
        var after = pod.Client.GetLink("eth0");
        Assert.Equal((existing.Index, "dummy", existing.MacAddress), (after.Index, after.Kind!, after.MacAddress));
    }

    [Fact]
    public void A_second_add_of_the_same_attachment_is_refused_and_keeps_the_first()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("twice", "10.10.0.0/24");
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        var before = NodeSnapshot.Take(cni, pod);
        cni.Add(config, pod, "c1").FailedWith(104);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "a repeated ADD");
        Assert.True(cni.IsReserved("twice", address));
    }
}
