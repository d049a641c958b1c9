using System.Diagnostics;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;
using Xunit.Abstractions;

namespace IpvlanCni.Kernel.Tests.Dhcp;

/// <summary>
/// Delegation to the reference dhcp plugin (Debian's /usr/lib/cni/dhcp and its daemon, with -broadcast): it runs its
/// client on CNI_IFNAME inside the pod, so our ADD must hand it the slave, named and up, before it is called.
/// </summary>
public class ReferenceDhcpTests(ITestOutputHelper output) : KernelTest
{
    [Fact]
    public void Ipam_dhcp_gets_leases_from_dnsmasq_through_the_reference_daemon_and_del_removes_the_pods()
    {
        using var dhcp = new DhcpLab();
        dhcp.StartDnsmasq();
        string socket = $"{dhcp.Folder}/cni-dhcp.sock";
        using var daemon = Programs.Start(dhcp.Lab.Node, "/usr/lib/cni/dhcp", ["daemon", "-broadcast", "-socketpath", socket]);
        try
        {
            daemon.StandardOutput.ReadToEndAsync();
            daemon.StandardError.ReadToEndAsync();
            dhcp.WaitFor(() => File.Exists(socket), TimeSpan.FromSeconds(10), "the reference dhcp daemon's socket");
            var config = dhcp.Config("refdhcp");
            config["ipam"] = new JsonObject { ["type"] = "dhcp", ["daemonSocketPath"] = socket };
            config["cniVersion"] = "1.0.0"; // Debian's plugins 1.1.1 speak up to 1.0.0
            var pods = new[] { dhcp.Lab.AddPod(), dhcp.Lab.AddPod() };
            var added = new List<CniCall>();
            for (int i = 0; i < pods.Length; i++)
            {
                var clock = Stopwatch.StartNew();
                added.Add(dhcp.Lab.Cni.Add(config, pods[i], $"ref-{i}").Succeeded($"ADD ref-{i}"));
                output.WriteLine($"ADD ref-{i} through the reference dhcp daemon: {clock.ElapsedMilliseconds} ms");
            }
            var addresses = added.Select(a => a.Addresses.Single()).ToList();
            Assert.NotEqual(addresses[0].Address, addresses[1].Address);
            var leases = dhcp.Leases();
            Assert.Equal(addresses.Select(a => a.Address.ToString()).Order(), leases.Select(l => l.Address.ToString()).Order());
            Assert.Equal(2, leases.Select(l => l.ClientId).Distinct().Count());
            using (var pod = RouteClient.OpenIn(pods[0].Namespace))
                Assert.Contains(pod.ListAddresses(System.Net.Sockets.AddressFamily.InterNetwork, pod.GetLink("eth0").Index), a => a.Prefix == addresses[0]);
            Assert.True(Programs.Ping(pods[0].Namespace, addresses[1].Address, 3), "pod 0 -> pod 1");
            Assert.True(Programs.Ping(pods[1].Namespace, DhcpLab.Server, 3), "pod 1 -> the DHCP server");

            for (int i = 0; i < pods.Length; i++)
            {
                dhcp.Lab.Cni.Del(config, pods[i], $"ref-{i}").Succeeded($"DEL ref-{i}");
                using var pod = RouteClient.OpenIn(pods[i].Namespace);
                Assert.Null(pod.TryGetLink("eth0"));
            }
        }
        finally
        {
            daemon.Kill();
            daemon.WaitForExit();
        }
    }
}
