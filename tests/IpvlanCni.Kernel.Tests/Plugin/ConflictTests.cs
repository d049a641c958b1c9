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
