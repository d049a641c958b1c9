using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>The codes README lists, each produced by a real request (the rest: BadInputTests, DelTests, CheckTests...).</summary>
public class ErrorCodeTests : KernelTest
{
    /// <summary>
    /// A route whose gateway is not on any of the pod's subnets: the kernel refuses RTM_NEWROUTE (ENETUNREACH, "Nexthop
    /// has invalid gateway"). The error is 100 naming the operation and carrying the kernel's own text, not 999 with a
    /// .NET type name, and the rollback leaves the node as it was.
    /// </summary>
    [Fact]
    public void A_kernel_refusal_is_code_100_with_the_operation_and_the_kernels_text()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("refused", "10.10.0.0/24");
        config["ipam"]!["routes"] = new JsonArray(new JsonObject { ["dst"] = "10.99.0.0/16", ["gw"] = "192.168.77.1" });
        var before = NodeSnapshot.Take(cni, pod);

        var failed = cni.Add(config, pod, "c1");
        string message = failed.FailedWith(100);
        Assert.Contains("add route 10.99.0.0/16", message);
        Assert.Contains("Nexthop has invalid gateway", message);
        Assert.DoesNotContain("Exception", failed.StdOut);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "an ADD the kernel refused");
    }

    /// <summary>Valid values this version cannot honour together: 2 (unsupported field), naming key and value.</summary>
    [Fact]
    public void A_known_key_this_combination_cannot_honour_is_code_2_naming_key_and_value()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("unsupported", "10.10.0.0/24").With("flag", "vepa");
        config["hostAccess"] = new JsonObject();
        var before = NodeSnapshot.Take(cni, pod);

        Assert.StartsWith("flag: \"vepa\" is not supported", cni.Add(config, pod, "c1").FailedWith(2));
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "a refused unsupported combination");
    }
}
