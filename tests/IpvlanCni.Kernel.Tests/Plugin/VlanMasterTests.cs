using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>"master": "ens10.100" creates VLAN 100 on ens10 when missing, and only what the plugin created goes.</summary>
public class VlanMasterTests : KernelTest
{
    [Fact]
    public void A_missing_vlan_master_is_created_up_and_removed_with_its_last_pod()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("vlan", "10.60.0.0/24").With("master", "ens10.100");
        var a = node.AddPod();
        var b = node.AddPod();

        var addA = cni.Add(config, a, "ca").Succeeded();
        var vlan = node.Client.GetLink("ens10.100");
        Assert.Equal("vlan", vlan.Kind);
        Assert.Equal((ushort)100, vlan.VlanId);
        Assert.Equal(node.Master.Index, vlan.ParentIndex);
        Assert.True(vlan.IsUp);
        Assert.Equal(vlan.Index, a.Client.GetLink("eth0").ParentIndex);
        var addB = cni.Add(config, b, "cb").Succeeded();
        Assert.Equal(vlan.Index, node.Client.GetLink("ens10.100").Index);
        Assert.True(a.Ping(addB.Address()));
        cni.Check(config, a, "ca", addA).Succeeded();

        cni.Del(config, a, "ca").Succeeded();
        Assert.NotNull(node.Client.TryGetLink("ens10.100")); // b still uses it
        cni.Del(config, b, "cb").Succeeded();
        Assert.Null(node.Client.TryGetLink("ens10.100"));
        Assert.NotNull(node.Client.TryGetLink("ens10"));
    }

    [Fact]
    public void Gc_removes_a_created_vlan_whose_pods_are_all_stale()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("vlangc", "10.60.0.0/24").With("master", "ens10.101");
        var pod = node.AddPod();
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        Assert.NotNull(node.Client.TryGetLink("ens10.101"));

        cni.Gc(config).Succeeded();
        Assert.Null(node.Client.TryGetLink("ens10.101"));
        Assert.False(cni.IsReserved("vlangc", address));
        Assert.False(cni.HasRecord("vlangc", "c1"));
    }

    [Fact]
    public void A_vlan_that_existed_before_is_never_removed()
    {
        using var node = new TestNode();
        node.Client.CreateLink(new VlanLinkSpec("ens10.200", node.Master.Index, 200));
        int index = node.Client.GetLink("ens10.200").Index;
        node.Client.ChangeLink(index, new LinkChange { Up = true });
        var cni = new PluginRunner(node);
        var config = cni.Config("vlankeep", "10.60.0.0/24").With("master", "ens10.200");

        cni.Add(config, node.AddPod(), "c1").Succeeded();
        cni.Del(config, node.Pods[0], "c1").Succeeded();
        Assert.Equal(index, node.Client.TryGetLink("ens10.200")?.Index);

        cni.Add(config, node.Pods[0], "c2").Succeeded();
        cni.Gc(config).Succeeded();
        Assert.Equal(index, node.Client.TryGetLink("ens10.200")?.Index);
        Assert.Null(node.Pods[0].Client.TryGetLink("eth0"));
    }
}
