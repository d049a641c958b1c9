using System.Diagnostics;
using System.Net;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;
using Xunit.Abstractions;

namespace IpvlanCni.Kernel.Tests.Dhcp;

/// <summary>IPAM type ipvlan-cni-dhcp against dnsmasq on the business network, through the published plugin and agent.</summary>
public class DhcpAgentTests(ITestOutputHelper output) : KernelTest
{
    [Fact]
    public void Two_pods_get_distinct_leases_with_distinct_client_ids_ping_each_other_and_the_server_and_del_releases()
    {
        using var dhcp = new DhcpLab();
        dhcp.StartDnsmasq();
        dhcp.StartAgent();
        var config = dhcp.Config("dhcpnet");
        var a = dhcp.Lab.AddPod();
        var b = dhcp.Lab.AddPod();

        var clock = Stopwatch.StartNew();
        var addA = dhcp.Lab.Cni.Add(config, a, "pod-a").Succeeded("ADD pod-a");
        output.WriteLine($"ADD pod-a took {clock.ElapsedMilliseconds} ms");
        clock.Restart();
        var addB = dhcp.Lab.Cni.Add(config, b, "pod-b").Succeeded("ADD pod-b");
        output.WriteLine($"ADD pod-b took {clock.ElapsedMilliseconds} ms");

        // For scale, on the same node and moment: an ADD with host-local IPAM (no DHCP at all).
        var local = dhcp.Lab.NetworkConfig("localnet", DhcpLab.Segment);
        var c = dhcp.Lab.AddPod();
        clock.Restart();
        dhcp.Lab.Cni.Add(local, c, "pod-c").Succeeded("ADD pod-c (host-local)");
        output.WriteLine($"ADD pod-c with host-local took {clock.ElapsedMilliseconds} ms");
        dhcp.Lab.Cni.Del(local, c, "pod-c").Succeeded("DEL pod-c");

        var ipA = addA.Addresses.Single();
        var ipB = addB.Addresses.Single();
        Assert.NotEqual(ipA.Address, ipB.Address);
        Assert.Equal(24, ipA.PrefixLength);
        Assert.Equal(Server.ToString(), addA.Json.GetProperty("ips")[0].GetProperty("gateway").GetString());
        Assert.Equal(Server.ToString(), addA.Json.GetProperty("dns").GetProperty("nameservers")[0].GetString());

        // The server's view: two leases, the addresses the pods got, two different client identifiers.
        var leases = dhcp.Leases();
        Assert.Equal(2, leases.Count);
        Assert.Equal(new[] { ipA.Address, ipB.Address }.OrderBy(x => x.ToString()), leases.Select(l => l.Address).OrderBy(x => x.ToString()));
        Assert.Equal(2, leases.Select(l => l.ClientId).Distinct().Count());
        Assert.All(leases, l => Assert.StartsWith("00:", l.ClientId));

        // The kernel's view: the address on eth0 and the default route via the DHCP router.
        using (var podA = RouteClient.OpenIn(a.Namespace))
        {
            var eth0 = podA.GetLink("eth0");
            Assert.Contains(podA.ListAddresses(System.Net.Sockets.AddressFamily.InterNetwork, eth0.Index), x => x.Prefix == ipA);
            Assert.Contains(podA.ListRoutes(System.Net.Sockets.AddressFamily.InterNetwork), r => r.Destination.PrefixLength == 0 && Server.Equals(r.Gateway));
        }
        Assert.True(Programs.Ping(a.Namespace, ipB.Address, 3), "pod a -> pod b");
        Assert.True(Programs.Ping(b.Namespace, Server, 3), "pod b -> DHCP server");

        dhcp.Lab.Cni.Check(config, a, "pod-a", addA).Succeeded("CHECK pod-a");
        dhcp.Lab.Cni.Status(config).Succeeded("STATUS with the agent up");

        // DEL releases from the leased address: dnsmasq forgets the lease at once.
        dhcp.Lab.Cni.Del(config, a, "pod-a").Succeeded("DEL pod-a");
        dhcp.WaitFor(() => dhcp.Leases().All(l => !l.Address.Equals(ipA.Address)), TimeSpan.FromSeconds(5), "dnsmasq to drop pod a's lease");
        Assert.Single(dhcp.Leases());
        Assert.DoesNotContain(Directory.GetFiles(dhcp.AgentLeases), f => File.ReadAllText(f).Contains("pod-a"));
        dhcp.Lab.Cni.Del(config, a, "pod-a").Succeeded("DEL pod-a again");
        // GC of a network whose runtime keeps no pod: the record, the link and the agent's lease go.
        dhcp.Lab.Cni.Gc(config).Succeeded("GC keeping nothing");
        Assert.Empty(Directory.GetFiles(dhcp.AgentLeases));
        using (var podB = RouteClient.OpenIn(b.Namespace))
            Assert.Null(podB.TryGetLink("eth0"));
        dhcp.Lab.Cni.Del(config, b, "pod-b").Succeeded("DEL pod-b after GC");
        Assert.Equal(0, dhcp.TerminateAgent());
        output.WriteLine(dhcp.AgentLogText);
    }

    static IPAddress Server => DhcpLab.Server;
}
