using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>
/// The kernel lets a pod's slave hold an address of its node, and the slave then captures the node's inbound traffic
/// for it. No IPAM hands one out, and one asked for by name is refused (7, naming it), changing nothing.
/// </summary>
public class NodeAddressTests : KernelTest
{
    /// <summary>The master holds 10.10.0.1 (the gateway) and 10.10.0.2, another interface 10.10.0.3: host-local skips both.</summary>
    [Fact]
    public void Host_local_skips_addresses_on_any_interface_of_the_node()
    {
        using var node = NodeHolding(out _);
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var added = cni.Add(cni.Config("skip", "10.10.0.0/24"), pod, "c1").Succeeded();
        Assert.Equal(IPAddress.Parse("10.10.0.4"), added.Address());
        Assert.Contains(node.Client.ListAddresses(AddressFamily.InterNetwork, node.Master.Index), a => a.Prefix.Address.Equals(IPAddress.Parse("10.10.0.2")));
        cni.Del(cni.Config("skip", "10.10.0.0/24"), pod, "c1").Succeeded();
    }

    public static TheoryData<string, string> HeldAddresses() => new()
    {
        { "10.10.0.2", "ens10" },
        { "10.10.0.3", "other0" },
    };

    [Theory]
    [MemberData(nameof(HeldAddresses))]
    public void A_static_address_the_node_holds_is_refused_naming_it(string address, string holder)
    {
        using var node = NodeHolding(out _);
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("static", "10.10.0.0/24");
        config["ipam"] = new JsonObject { ["type"] = "static", ["addresses"] = new JsonArray(new JsonObject { ["address"] = $"{address}/24" }) };
        var before = NodeSnapshot.Take(cni, pod);

        string message = cni.Add(config, pod, "c1").FailedWith(7);
        Assert.StartsWith("ipam.addresses:", message);
        Assert.Contains(address, message);
        Assert.Contains($"\"{holder}\"", message);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "a refused static address of the node");
    }

    [Theory]
    [MemberData(nameof(HeldAddresses))]
    public void A_requested_address_the_node_holds_is_refused_naming_it(string address, string holder)
    {
        using var node = NodeHolding(out _);
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("requested", "10.10.0.0/24");
        var before = NodeSnapshot.Take(cni, pod);

        string message = cni.Add(config, pod, "c1", env: new Dictionary<string, string> { ["CNI_ARGS"] = $"IP={address}" }).FailedWith(7);
        Assert.Contains(address, message);
        Assert.Contains($"\"{holder}\"", message);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "a refused requested address of the node");
        Assert.False(cni.IsReserved("requested", IPAddress.Parse(address)));
    }

    /// <summary>With linkInContainer the master's namespace is the pod's: its addresses count as the node's too.</summary>
    [Fact]
    public void With_link_in_container_the_masters_namespace_addresses_are_skipped_too()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        pod.Client.CreateLink(new DummyLinkSpec("podmaster"));
        var podMaster = pod.Client.GetLink("podmaster");
        pod.Client.ChangeLink(podMaster.Index, new LinkChange { Up = true });
        pod.Client.AddAddress(new AddressInfo(podMaster.Index, IpPrefix.Parse("10.30.0.2/24")));
        var config = cni.Config("inpod", "10.30.0.0/24").With("master", "podmaster").With("linkInContainer", true);

        var added = cni.Add(config, pod, "c1").Succeeded();
        Assert.Equal(IPAddress.Parse("10.30.0.3"), added.Address());
        cni.Del(config, pod, "c1").Succeeded();
    }

    static TestNode NodeHolding(out LinkInfo other)
    {
        var node = new TestNode();
        node.Client.AddAddress(new AddressInfo(node.Master.Index, IpPrefix.Parse("10.10.0.2/24")) { Flags = AddressFlags.NoDad });
        node.Client.CreateLink(new DummyLinkSpec("other0"));
        other = node.Client.GetLink("other0");
        node.Client.ChangeLink(other.Index, new LinkChange { Up = true });
        node.Client.AddAddress(new AddressInfo(other.Index, IpPrefix.Parse("10.10.0.3/32")) { Flags = AddressFlags.NoDad });
        return node;
    }
}
