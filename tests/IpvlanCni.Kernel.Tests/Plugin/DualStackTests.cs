using System.Net.Sockets;
using System.Net;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Plugin;

public class DualStackTests : KernelTest
{
    /// <summary>
    /// An IPv4 and an IPv6 range set: both addresses land on the pod, and the IPv6 default route via the gateway is
    /// in place at once, which needs the plugin to wait out duplicate address detection.
    /// </summary>
    [Fact]
    public void Both_families_are_configured_and_pods_ping_each_other_over_ipv6()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("dual", "10.10.0.0/24");
        config.Ipam().Remove("subnet");
        config.Ipam()["ranges"] = JsonNode.Parse("""[[{"subnet":"10.10.0.0/24"}],[{"subnet":"fd00:10::/64"}]]""");
        config.Ipam()["routes"] = JsonNode.Parse("""[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]""");
        var a = node.AddPod();
        var b = node.AddPod();

        var addA = cni.Add(config, a, "ca").Succeeded();
        var addB = cni.Add(config, b, "cb").Succeeded();
        foreach (var (pod, added) in new[] { (a, addA), (b, addB) })
        {
            var eth0 = pod.Client.GetLink("eth0");
            var addresses = pod.Client.ListAddresses(AddressFamily.Unspecified, eth0.Index).Select(x => x.Prefix).ToList();
            Assert.Equal(2, added.Addresses.Count);
            Assert.All(added.Addresses, expected => Assert.Contains(expected, addresses));
            Assert.Equal(IPAddress.Parse("fd00:10::1"), pod.Route("::/0")?.Gateway);
            Assert.Equal(IPAddress.Parse("10.10.0.1"), pod.Route("0.0.0.0/0")?.Gateway);
            Assert.DoesNotContain(pod.Client.ListAddresses(AddressFamily.InterNetworkV6, eth0.Index),
                x => x.Prefix.Equals(added.Addresses.Single(p => !p.IsIPv4)) && x.Flags.HasFlag(AddressFlags.Tentative));
        }
        var ping6 = Programs.RunPing(a.Namespace, addB.Address(AddressFamily.InterNetworkV6), seconds: 2);
        Assert.True(ping6.ExitCode == 0, $"ping6: {ping6}");
        Assert.True(b.Ping(addA.Address(AddressFamily.InterNetworkV6)));
        Assert.True(a.Ping(addB.Address()));
        cni.Check(config, a, "ca", addA).Succeeded();

        cni.Del(config, a, "ca").Succeeded();
        Assert.All(addA.Addresses, x => Assert.False(cni.IsReserved("dual", x.Address)));
    }
}
