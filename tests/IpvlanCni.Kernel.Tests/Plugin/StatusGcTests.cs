using System.Net;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

public class StatusTests : KernelTest
{
    [Fact]
    public void Status_is_ok_while_the_master_is_up_and_50_when_it_is_down_or_missing()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("status", "10.10.0.0/24");
        cni.Status(config).Succeeded();

        node.Client.ChangeLink(node.Master.Index, new LinkChange { Up = false });
        Assert.Contains("ens10", cni.Status(config).FailedWith(50));
        node.Client.ChangeLink(node.Master.Index, new LinkChange { Up = true });
        cni.Status(config).Succeeded();

        Assert.Contains("ens99", cni.Status(config.With("master", "ens99")).FailedWith(50));
    }

    [Fact]
    public void Status_of_a_vlan_master_follows_its_parent()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("statusvlan", "10.10.0.0/24").With("master", "ens10.400");
        cni.Status(config).Succeeded(); // not created yet: ready when the parent is

        node.Client.ChangeLink(node.Master.Index, new LinkChange { Up = false });
        Assert.Contains("ens10", cni.Status(config).FailedWith(50));
        node.Client.ChangeLink(node.Master.Index, new LinkChange { Up = true });

        cni.Add(config, node.AddPod(), "c1").Succeeded();
        cni.Status(config).Succeeded();
        node.Client.ChangeLink(node.Master.Index, new LinkChange { Up = false });
        Assert.Contains("ens10", cni.Status(config).FailedWith(50));
    }
}

public class GcTests : KernelTest
{
    [Theory]
    [InlineData("cni.dev/valid-attachments")]
    [InlineData("cni.dev/attachments")]
    public void Gc_releases_attachments_not_listed_and_keeps_the_listed_ones(string key)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        // Host access gives each pod host state on the node (a /32 route through the host-side slave).
        var config = cni.Config("gc", "10.10.0.0/24").With("hostAccess", JsonNode.Parse("""{"addresses":["10.10.0.1"]}"""));
        var keep = node.AddPod();
        var stale = node.AddPod();
        var kept = cni.Add(config, keep, "keep").Succeeded().Address();
        var gone = cni.Add(config, stale, "stale").Succeeded().Address();
        Assert.NotNull(HostRoute(node, gone));

        var request = config.DeepClone().AsObject();
        request[key] = JsonNode.Parse("""[{"containerID":"keep","ifname":"eth0"}]""");
        cni.Run("GC", request, "", "", "").Succeeded();

        Assert.False(cni.IsReserved("gc", gone));
        Assert.False(cni.HasRecord("gc", "stale"));
        Assert.Null(HostRoute(node, gone));
        Assert.True(cni.IsReserved("gc", kept));
        Assert.True(cni.HasRecord("gc", "keep"));
        Assert.NotNull(HostRoute(node, kept));
        Assert.True(keep.Ping(IPAddress.Parse("10.10.0.1")), "the kept pod lost its host access");
    }

    [Fact]
    public void Gc_without_a_list_is_refused_and_releases_nothing()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("gcnolist", "10.10.0.0/24");
        var pod = node.AddPod();
        var address = cni.Add(config, pod, "c1").Succeeded().Address();
        var before = NodeSnapshot.Take(cni, pod);
        Assert.Contains("valid-attachments", cni.Run("GC", config, "", "", "").FailedWith(7));
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "GC without a list");
        Assert.True(cni.IsReserved("gcnolist", address));
    }

    static RouteInfo? HostRoute(TestNode node, IPAddress pod) =>
        node.Client.ListRoutes(pod.AddressFamily).FirstOrDefault(r => r.Destination.Equals(IpPrefix.Host(pod)));
}
