using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Plugin;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>A failed ADD leaves nothing behind: not on the node, not in the pod, not on disk, not in NAT.</summary>
public class RollbackTests : KernelTest
{
    public static TheoryData<string> Steps => [.. FaultPoints.AddSteps];

    /// <summary>
    /// A network that uses every step (a VLAN master the plugin creates, host access, ipMasq), failed at each point,
    /// next to a live pod of another network whose state must survive untouched.
    /// </summary>
    [Theory]
    [MemberData(nameof(Steps))]
    public void A_failure_at_each_step_rolls_back_everything(string step)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var live = node.AddPod();
        var liveConfig = cni.Config("live", "10.10.0.0/24").With("ipMasq", true);
        var liveAddress = cni.Add(liveConfig, live, "live").Succeeded().Address();
        var config = cni.Config("full", "10.70.0.0/24")
            .With("master", "ens10.500")
            .With("mtu", 1400)
            .With("ipMasq", true)
            .With("hostAccess", JsonNode.Parse("""{"addresses":["10.10.0.1"]}"""));
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, live, pod);

        var failed = cni.Add(config, pod, "c1", env: new Dictionary<string, string> { [FaultPoints.Variable] = $"{step}:fail" });
        Assert.Contains(step, failed.FailedWith(999));

        NodeSnapshot.Take(cni, live, pod).AssertSameAs(before, $"ADD failed at {step}");
        // Nothing half-done blocks the same ADD afterwards.
        cni.Add(config, pod, "c1").Succeeded();
    }

    /// <summary>The snapshot is the rollback tests' only witness: it must see everything a successful ADD leaves.</summary>
    [Fact]
    public void The_snapshot_sees_what_an_add_leaves()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("seen", "10.70.0.0/24")
            .With("master", "ens10.500")
            .With("ipMasq", true)
            .With("hostAccess", JsonNode.Parse("""{"addresses":["10.10.0.1"]}"""));
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);
        var address = cni.Add(config, pod, "c1").Succeeded().Address();

        var added = NodeSnapshot.Take(cni, pod).Lines.Except(before.Lines).ToList();
        string[] expected =
        [
            "link node ens10.500 kind=vlan", "link node ipvlh", "address node 10.10.0.1/32 dev=ipvlh", $"route node table=254 {address}/32 via= dev=ipvlh",
            $"link {pod.Name} eth0 kind=ipvlan", $"address {pod.Name} {address}/24 dev=eth0", $"route {pod.Name} table=254 0.0.0.0/0 via=10.70.0.1 dev=eth0",
            "/attachments/seen/c1@eth0 file ", "/masters/ens10.500 file ", $"/ipam/seen/{address} file ", "nat ipv4 -A POSTROUTING",
        ];
        Assert.All(expected, line => Assert.Contains(added, l => l.Contains(line)));
    }

    [Fact]
    public void An_exhausted_range_rolls_back_everything()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("tiny", "10.80.0.0/24").With("master", "ens10.600").With("ipMasq", true);
        config.Ipam()["rangeStart"] = "10.80.0.5";
        config.Ipam()["rangeEnd"] = "10.80.0.5";
        var first = node.AddPod();
        cni.Add(config, first, "c1").Succeeded();
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, first, pod);

        Assert.Contains("10.80.0", cni.Add(config, pod, "c2").FailedWith(101));
        NodeSnapshot.Take(cni, first, pod).AssertSameAs(before, "ADD with an exhausted range");
    }

    /// <summary>A route the kernel refuses (its gateway is on no link) fails the ADD late, after the link is up.</summary>
    [Fact]
    public void A_route_the_kernel_refuses_rolls_back_everything()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("badroute", "10.80.0.0/24").With("master", "ens10.602");
        config.Ipam()["routes"] = JsonNode.Parse("""[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"172.16.0.1"}]""");
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);

        var failed = cni.Add(config, pod, "c1");
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("192.168.0.0/16", failed.ErrorMessage);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD whose route the kernel refused");
    }

    /// <summary>The range's only address is held by another container (another plugin, say): the VLAN made for this ADD goes again.</summary>
    [Fact]
    public void An_exhausted_range_on_a_fresh_vlan_removes_the_vlan_again()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("taken", "10.80.0.0/24").With("master", "ens10.601");
        config.Ipam()["rangeStart"] = "10.80.0.5";
        config.Ipam()["rangeEnd"] = "10.80.0.5";
        Directory.CreateDirectory(Path.Combine(cni.DataDir, "taken"));
        File.WriteAllText(Path.Combine(cni.DataDir, "taken", "10.80.0.5"), "someone\r\neth0");
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);

        cni.Add(config, pod, "c1").FailedWith(101);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD that found no address");
        Assert.Null(node.Client.TryGetLink("ens10.601"));
    }
}
