using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;
using Xunit.Abstractions;

namespace IpvlanCni.Kernel.Tests.Dhcp;

/// <summary>Many pods, renewals, an agent killed and restarted, a lost lease, an absent agent.</summary>
public class DhcpLifecycleTests(ITestOutputHelper output) : KernelTest
{
    const int Pods = 20;

    [Fact]
    public void Twenty_pods_at_once_get_distinct_leases_renew_and_keep_renewing_after_the_agent_is_killed_and_restarted()
    {
        using var dhcp = new DhcpLab(renewSeconds: 6);
        dhcp.StartDnsmasq();
        dhcp.StartAgent();
        var config = dhcp.Config("many");
        var pods = Enumerable.Range(0, Pods).Select(_ => dhcp.Lab.AddPod()).ToList();

        // All ADDs at once: none may be lost.
        var results = new ConcurrentDictionary<int, CniCall>();
        var clock = Stopwatch.StartNew();
        Parallel.For(0, Pods, new ParallelOptions { MaxDegreeOfParallelism = Pods }, i => results[i] = dhcp.Lab.Cni.Add(config, pods[i], $"many-{i}"));
        output.WriteLine($"{Pods} concurrent ADDs took {clock.ElapsedMilliseconds} ms");
        foreach (var (i, call) in results.OrderBy(r => r.Key))
            call.Succeeded($"ADD many-{i}");
        var addresses = Enumerable.Range(0, Pods).Select(i => results[i].Addresses.Single().Address).ToList();
        Assert.Equal(Pods, addresses.Distinct().Count());

        var leases = dhcp.Leases();
        Assert.Equal(Pods, leases.Count);
        Assert.Equal(Pods, leases.Select(l => l.ClientId).Distinct().Count());
        Assert.Equal(addresses.Select(a => a.ToString()).Order(), leases.Select(l => l.Address.ToString()).Order());
        Assert.Single(leases.Select(l => l.Mac).Distinct()); // one MAC (the master's) for all: only the client ID tells them apart
        Assert.True(Programs.Ping(pods[0].Namespace, addresses[Pods - 1], 3), "first pod -> last pod");
        Assert.True(Programs.Ping(pods[Pods - 1].Namespace, addresses[0], 3), "last pod -> first pod");
        Assert.True(Programs.Ping(pods[Pods / 2].Namespace, DhcpLab.Server, 3), "a pod -> the DHCP server");

        // Renewals at T1 (6 s): dnsmasq moves every lease's expiry forward.
        var before = dhcp.Leases().ToDictionary(l => l.Address.ToString(), l => l.Expiry);
        dhcp.WaitFor(() => dhcp.Leases().All(l => l.Expiry > before[l.Address.ToString()]), TimeSpan.FromSeconds(20), "every lease to be renewed");
        Assert.Contains("dhcp renewed many/many-0/eth0", dhcp.AgentLogText);

        // SIGKILL: no goodbye. A new agent reads the leases from disk and goes on renewing them.
        dhcp.KillAgent();
        var afterKill = dhcp.Leases().ToDictionary(l => l.Address.ToString(), l => l.Expiry);
        var restarted = dhcp.StartAgent();
        Assert.Equal(Pods, Regex.Count(dhcp.AgentLogText, $"dhcp resumed many/"));
        dhcp.WaitFor(() => dhcp.Leases().All(l => l.Expiry > afterKill[l.Address.ToString()]), TimeSpan.FromSeconds(25), "the restarted agent to renew every lease");

        // A repeated ADD after the restart gets the same address; CHECK still holds.
        var again = AgentCall(dhcp.AgentSocket, "dhcp", "add", new JsonObject
        {
            ["network"] = "many", ["containerId"] = "many-3", ["ifName"] = "eth0", ["netns"] = pods[3].Path,
        });
        Assert.True(again.GetProperty("ok").GetBoolean(), again.ToString());
        Assert.Equal($"{addresses[3]}/24", again.GetProperty("result").GetProperty("ips")[0].GetProperty("address").GetString());
        dhcp.Lab.Cni.Check(config, pods[3], "many-3", results[3]).Succeeded("CHECK after restart");

        // DEL releases every lease; the agent's folder empties.
        Parallel.For(0, Pods, i => dhcp.Lab.Cni.Del(config, pods[i], $"many-{i}").Succeeded($"DEL many-{i}"));
        dhcp.WaitFor(() => dhcp.Leases().Count == 0, TimeSpan.FromSeconds(10), "dnsmasq to drop every released lease");
        Assert.Empty(Directory.GetFiles(dhcp.AgentLeases));
        Assert.Equal(0, dhcp.TerminateAgent());
        Assert.Contains($"agent stopping on SIGTERM", dhcp.AgentLogText);
        Assert.False(File.Exists(dhcp.AgentSocket));
    }

    [Fact]
    public void A_lease_the_server_refuses_to_renew_is_logged_lost_and_check_fails()
    {
        using var dhcp = new DhcpLab(renewSeconds: 4);
        dhcp.StartDnsmasq();
        dhcp.StartAgent();
        var config = dhcp.Config("lost");
        var pod = dhcp.Lab.AddPod();
        var added = dhcp.Lab.Cni.Add(config, pod, "lost-1").Succeeded("ADD");
        dhcp.Lab.Cni.Check(config, pod, "lost-1", added).Succeeded("CHECK while bound");

        // A new server that hands out another range only: it NAKs the renewal (dnsmasq is authoritative).
        dhcp.StopDnsmasq();
        dhcp.StartDnsmasq("10.10.0.20,10.10.0.29", []);
        dhcp.WaitFor(() => dhcp.AgentLogText.Contains("LEASE LOST lost/lost-1/eth0"), TimeSpan.FromSeconds(20), "the agent to log the lost lease");
        var message = dhcp.Lab.Cni.Check(config, pod, "lost-1", added).FailedWith(105);
        Assert.Contains("lost", message);
        // DEL still succeeds, and forgets it.
        dhcp.Lab.Cni.Del(config, pod, "lost-1").Succeeded("DEL");
        Assert.Empty(Directory.GetFiles(dhcp.AgentLeases));
    }

    [Fact]
    public void Without_the_agent_add_fails_with_code_11_saying_to_start_it_and_changes_nothing_and_l3_is_refused()
    {
        using var dhcp = new DhcpLab();
        var config = dhcp.Config("absent");
        var pod = dhcp.Lab.AddPod();
        var before = NodeSnapshot.Take(dhcp.Lab.Node, SnapshotFolders.PluginState(dhcp.Lab.StateDir, dhcp.Lab.IpamDir), pod.Namespace);
        var clock = Stopwatch.StartNew();
        var message = dhcp.Lab.Cni.Add(config, pod, "absent-1").FailedWith(11);
        output.WriteLine($"ADD without an agent failed in {clock.ElapsedMilliseconds} ms: {message}");
        Assert.Contains("ipvlan-cni agent", message);
        Assert.Contains(dhcp.AgentSocket, message);
        using (var client = RouteClient.OpenIn(pod.Namespace))
            Assert.Null(client.TryGetLink("eth0"));
        Assert.Equal(before.Lines, NodeSnapshot.Take(dhcp.Lab.Node, SnapshotFolders.PluginState(dhcp.Lab.StateDir, dhcp.Lab.IpamDir), pod.Namespace).Lines);

        Assert.Contains("agent is not running", dhcp.Lab.Cni.Status(config).FailedWith(50));

        var l3 = config.DeepClone().AsObject();
        l3["mode"] = "l3";
        var refused = dhcp.Lab.Cni.Add(l3, pod, "absent-2").FailedWith(7);
        Assert.Contains("mode", refused);
        Assert.Contains("broadcast", refused);
    }

    [Fact]
    public void An_add_failing_at_any_step_after_the_link_exists_rolls_back_the_link_the_records_and_the_lease()
    {
        using var dhcp = new DhcpLab();
        dhcp.StartDnsmasq();
        dhcp.StartAgent();
        var config = dhcp.Config("rollback");
        var pod = dhcp.Lab.AddPod();
        var folders = SnapshotFolders.PluginState(dhcp.Lab.StateDir, dhcp.Lab.IpamDir);
        var before = NodeSnapshot.Take(dhcp.Lab.Node, folders, pod.Namespace);
        foreach (string step in IpvlanCni.Plugin.FaultPoints.AddSteps)
        {
            var failed = dhcp.Lab.Cni.Add(config, pod, "rb-1", env: new Dictionary<string, string> { [IpvlanCni.Plugin.FaultPoints.Variable] = $"{step}:fail" });
            Assert.Contains(step, failed.FailedWith(999));
            Assert.Equal(before.Lines, NodeSnapshot.Take(dhcp.Lab.Node, folders, pod.Namespace).Lines);
            Assert.Empty(Directory.Exists(dhcp.AgentLeases) ? Directory.GetFiles(dhcp.AgentLeases) : []);
            // A lease taken before the failure was released from its address (added back for the RELEASE if needed).
            dhcp.WaitFor(() => dhcp.Leases().Count == 0, TimeSpan.FromSeconds(5), $"dnsmasq to hold no lease after a failure at {step}");
        }
        Assert.Equal(4, Regex.Count(dhcp.AgentLogText, "dhcp released rollback/rb-1/eth0"));
        dhcp.Lab.Cni.Add(config, pod, "rb-1").Succeeded("ADD after the failures");
        dhcp.Lab.Cni.Del(config, pod, "rb-1").Succeeded("DEL");
    }

    /// <summary>One request to the agent over its socket, as the plugin sends it.</summary>
    internal static JsonElement AgentCall(string socketPath, string service, string op, JsonObject args)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        socket.ReceiveTimeout = 30_000;
        var request = new JsonObject { ["service"] = service, ["op"] = op, ["args"] = args };
        socket.Send(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"));
        using var stream = new NetworkStream(socket);
        using var reader = new StreamReader(stream);
        return JsonDocument.Parse(reader.ReadLine() ?? "{}").RootElement.Clone();
    }
}
