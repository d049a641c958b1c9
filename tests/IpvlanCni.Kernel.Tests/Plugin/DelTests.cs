using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>DEL succeeds whatever is already gone, and always releases the reservation and the record.</summary>
public class DelTests : KernelTest
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Del_after_the_namespace_is_gone_releases_everything(bool passOldPath)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("gone", "10.10.0.0/24").With("master", "ens10.300");
        var pod = node.AddPod();
        string oldPath = pod.Path;
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        pod.Dispose(); // unmounts it and closes our handles: the kernel frees the namespace and its links

        cni.Run("DEL", config, "c1", passOldPath ? oldPath : "", "eth0").Succeeded();
        Assert.False(cni.IsReserved("gone", address));
        Assert.False(cni.HasRecord("gone", "c1"));
        Assert.Null(node.Client.TryGetLink("ens10.300")); // the created VLAN went with its last pod
        cni.Run("DEL", config, "c1", passOldPath ? oldPath : "", "eth0").Succeeded();
    }

    /// <summary>With linkInContainer the master dies with the pod's namespace: DEL still releases the rest.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Del_of_a_link_in_container_after_the_namespace_is_gone_releases_everything(bool passOldPath)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        pod.Client.CreateLink(new DummyLinkSpec("ens11"));
        pod.Client.ChangeLink(pod.Client.GetLink("ens11").Index, new LinkChange { Up = true });
        var config = cni.Config("inpodgone", "10.40.0.0/24").With("master", "ens11").With("linkInContainer", true);
        string oldPath = pod.Path;
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        pod.Dispose();

        cni.Run("DEL", config, "c1", passOldPath ? oldPath : "", "eth0").Succeeded();
        Assert.False(cni.IsReserved("inpodgone", address));
        Assert.False(cni.HasRecord("inpodgone", "c1"));
    }

    [Fact]
    public void Del_after_the_master_is_gone_releases_everything()
    {
        using var node = new TestNode();
        node.Client.CreateLink(new DummyLinkSpec("ens13"));
        node.Client.ChangeLink(node.Client.GetLink("ens13").Index, new LinkChange { Up = true });
        var cni = new PluginRunner(node);
        var config = cni.Config("nomaster", "10.10.0.0/24").With("master", "ens13");
        var pod = node.AddPod();
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        node.Client.DeleteLink(node.Client.GetLink("ens13").Index); // takes its slaves, the pod's eth0, along

        cni.Del(config, pod, "c1").Succeeded();
        Assert.False(cni.IsReserved("nomaster", address));
        Assert.False(cni.HasRecord("nomaster", "c1"));
        Assert.Null(pod.Client.TryGetLink("eth0"));
    }

    [Fact]
    public void Del_twice_and_del_of_something_never_added_succeed()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("twice", "10.10.0.0/24");
        var pod = node.AddPod();
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        var other = cni.Add(config, node.AddPod(), "c2").Succeeded().Address();

        cni.Del(config, pod, "c1").Succeeded();
        cni.Del(config, pod, "c1").Succeeded();
        Assert.False(cni.IsReserved("twice", address));
        Assert.Null(pod.Client.TryGetLink("eth0"));

        var before = NodeSnapshot.Take(cni, pod);
        cni.Del(config, pod, "never").Succeeded();
        cni.Del(config, null, "never").Succeeded();
        cni.Del(cni.Config("unknownnet", "10.10.0.0/24"), pod, "c2").Succeeded();
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "DEL of attachments never added");
        Assert.True(cni.IsReserved("twice", other), "DEL of another attachment released c2's address");
    }
}
