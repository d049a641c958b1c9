using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>The reference plugin's keys (mtu, linkInContainer, master default, chaining, dns) do what they say.</summary>
public class ConfigKeyTests : KernelTest
{
    [Fact]
    public void Mtu_is_set_on_the_slave_and_one_above_the_master_is_refused_without_any_change()
    {
        using var node = new TestNode();
        node.Client.ChangeLink(node.Master.Index, new LinkChange { Mtu = 1500 });
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        cni.Add(cni.Config("mtu", "10.10.0.0/24").With("mtu", 1400), pod, "c1").Succeeded();
        Assert.Equal(1400, pod.Client.GetLink("eth0").Mtu);

        var other = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod, other);
        string message = cni.Add(cni.Config("mtu", "10.10.0.0/24").With("mtu", 1501), other, "c2").FailedWith(7);
        Assert.Contains("mtu", message);
        NodeSnapshot.Take(cni, pod, other).AssertSameAs(before, "a refused mtu");
    }

    [Fact]
    public void LinkInContainer_takes_the_master_from_the_pod_namespace()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        pod.Client.CreateLink(new DummyLinkSpec("ens11"));
        int inner = pod.Client.GetLink("ens11").Index;
        pod.Client.ChangeLink(inner, new LinkChange { Up = true });
        var config = cni.Config("inpod", "10.40.0.0/24").With("master", "ens11").With("linkInContainer", true);

        var added = cni.Add(config, pod, "c1").Succeeded();
        var eth0 = pod.Client.GetLink("eth0");
        Assert.Equal("ipvlan", eth0.Kind);
        Assert.Equal(inner, eth0.ParentIndex);
        Assert.DoesNotContain(node.Client.ListLinks(), l => l.Kind == "ipvlan");
        cni.Check(config, pod, "c1", added).Succeeded();

        cni.Del(config, pod, "c1").Succeeded();
        Assert.Null(pod.Client.TryGetLink("eth0"));
        Assert.NotNull(pod.Client.TryGetLink("ens11"));
    }

    [Fact]
    public void Without_master_the_default_routes_interface_is_used()
    {
        using var node = new TestNode();
        node.Client.CreateLink(new DummyLinkSpec("ens12"));
        int uplink = node.Client.GetLink("ens12").Index;
        node.Client.ChangeLink(uplink, new LinkChange { Up = true });
        node.Client.AddAddress(new AddressInfo(uplink, IpPrefix.Parse("10.50.0.1/24")));
        node.Client.AddRoute(new RouteInfo(IpPrefix.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.50.0.254"), LinkIndex = uplink });
        var cni = new PluginRunner(node);
        var pod = node.AddPod();

        cni.Add(cni.Config("defmaster", "10.50.0.0/24").With("master", null), pod, "c1").Succeeded();
        Assert.Equal(uplink, pod.Client.GetLink("eth0").ParentIndex);
    }

    [Fact]
    public void Without_master_and_default_route_add_fails_naming_master()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var before = NodeSnapshot.Take(cni, pod);
        Assert.Contains("master", cni.Add(cni.Config("nomaster", "10.10.0.0/24").With("master", null), pod, "c1").FailedWith(7));
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, "ADD without a usable master");
    }

    /// <summary>Chained after a plugin that produced the interface and addresses: master and IPs come from prevResult.</summary>
    [Fact]
    public void Chained_without_master_and_ipam_uses_prevResults_interface_and_addresses()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("chained", "10.10.0.0/24").With("master", null).With("ipam", null);
        config["prevResult"] = JsonNode.Parse("""
            {"cniVersion":"1.1.0","interfaces":[{"name":"ens10"}],
             "ips":[{"address":"10.10.0.77/24","gateway":"10.10.0.1","interface":0}],
             "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.10.0.53"]}}
            """);

        var added = cni.Add(config, pod, "c1").Succeeded();
        Assert.Equal(IpPrefix.Parse("10.10.0.77/24"), added.Addresses.Single());
        var eth0 = pod.Client.GetLink("eth0");
        Assert.Equal(node.Master.Index, eth0.ParentIndex);
        Assert.Contains(pod.Client.ListAddresses(AddressFamily.InterNetwork, eth0.Index), a => a.Prefix.Equals(IpPrefix.Parse("10.10.0.77/24")));
        Assert.Equal(IPAddress.Parse("10.10.0.1"), pod.Route("0.0.0.0/0")?.Gateway);
        Assert.Equal("10.10.0.53", added.Json.GetProperty("dns").GetProperty("nameservers")[0].GetString());
        Assert.False(Directory.Exists(Path.Combine(cni.DataDir, "chained")), "chained ADD touched an IPAM store");

        cni.Del(config, pod, "c1").Succeeded();
        Assert.Null(pod.Client.TryGetLink("eth0"));
    }

    [Fact]
    public void Dns_of_the_configuration_is_passed_through_to_the_result()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var dns = JsonNode.Parse("""{"nameservers":["10.10.0.53","fd00::53"],"domain":"pods.example","search":["a.example","b.example"],"options":["ndots:2"]}""")!;
        var added = cni.Add(cni.Config("dns", "10.10.0.0/24").With("dns", dns), node.AddPod(), "c1").Succeeded();
        Assert.True(JsonNode.DeepEquals(dns, JsonNode.Parse(added.Json.GetProperty("dns").GetRawText())),
            $"dns changed on its way through: {added.Json.GetProperty("dns")}");
    }
}
