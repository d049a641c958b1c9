using System.Net;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

public class SmokeTests : KernelTest
{
    [Fact]
    public void Two_l2_pods_added_by_the_plugin_ping_each_other_and_del_removes_them()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("smoke", "10.10.0.0/24");
        var a = node.AddPod();
        var b = node.AddPod();

        var addA = cni.Add(config, a, "ca").Succeeded();
        cni.Add(config, b, "cb").Succeeded();
        var addressB = IpPrefix.Parse(cni.Add(config, node.AddPod(), "cc").Succeeded().Json.GetProperty("ips")[0].GetProperty("address").GetString()!);

        var eth0 = a.Client.GetLink("eth0");
        Assert.Equal("ipvlan", eth0.Kind);
        Assert.Equal(IpvlanMode.L2, eth0.IpvlanMode);
        Assert.Equal(node.Master.MacAddress, eth0.MacAddress);
        Assert.True(a.Ping(addressB.Address));
        cni.Check(config, a, "ca", addA).Succeeded();

        cni.Del(config, a, "ca").Succeeded();
        Assert.Null(a.Client.TryGetLink("eth0"));
        cni.Del(config, a, "ca").Succeeded(); // idempotent
    }
}
