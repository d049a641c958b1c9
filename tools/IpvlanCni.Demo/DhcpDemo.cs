using System.Diagnostics;
using System.Text.Json.Nodes;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

/// <summary>
/// A pod that gets its address from DHCP: dnsmasq on the business peer's VLAN 100, the agent (`ipvlan-cni agent`) on
/// the node, a pod on an "ipvlan-cni-dhcp" network of ens10.100. Started here, stopped by PID.
/// </summary>
static class DhcpDemo
{
    public static bool Run(Lab lab)
    {
        string folder = $"/tmp/{lab.Name}/dhcp";
        Directory.CreateDirectory(folder);
        string leases = $"{folder}/dnsmasq.leases", socket = $"{folder}/agent.sock", agentLog = $"{folder}/agent.log";
        File.WriteAllText(leases, "");
        Console.WriteLine("""

            DHCP: dnsmasq on the business peer (eth0.100, 10.100.0.254) hands out 10.100.0.100-199; the node runs
            `ipvlan-cni agent`; a pod joins a network with "ipam": {"type": "ipvlan-cni-dhcp"} on ens10.100 (l2).
            """);
        using var dnsmasq = Programs.Start(lab.Business, Programs.Locate("dnsmasq"),
        [
            "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0", "--user=root",
            "--interface=eth0.100", "--bind-interfaces", "--dhcp-authoritative", "--pid-file=", $"--log-facility={folder}/dnsmasq.log",
            "--dhcp-range=10.100.0.100,10.100.0.199,255.255.255.0,2m", $"--dhcp-leasefile={leases}",
            "--dhcp-option=option:router,10.100.0.254", "--dhcp-option=option:dns-server,10.100.0.254",
        ]);
        using var agent = Programs.Start(lab.Node, CniRuntime.PluginPath, ["agent", "--socket", socket, "--lease-dir", $"{folder}/leases", "--log-file", agentLog]);
        foreach (var p in new[] { dnsmasq, agent })
        {
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
        }
        try
        {
            Wait(() => File.Exists(agentLog) && File.ReadAllText(agentLog).Contains("listening"), "the agent");
            Wait(() => File.Exists($"{folder}/dnsmasq.log") && File.ReadAllText($"{folder}/dnsmasq.log").Contains("DHCP, IP range"), "dnsmasq");
            var config = new JsonObject
            {
                ["cniVersion"] = "1.1.0", ["name"] = "dhcp-demo", ["type"] = "ipvlan-cni", ["master"] = "ens10.100", ["mode"] = "l2",
                ["stateDir"] = lab.StateDir,
                ["ipam"] = new JsonObject { ["type"] = "ipvlan-cni-dhcp", ["agentSocket"] = socket },
            };
            var pod = lab.AddPod();
            var clock = Stopwatch.StartNew();
            var added = lab.Cni.Add(config, pod, "dhcp-pod").Succeeded("ADD dhcp-pod");
            long addMs = clock.ElapsedMilliseconds;
            var address = added.Addresses.Single();
            var lease = File.ReadAllLines(leases).Single(l => l.Length > 0).Split(' ');
            bool reached = Programs.Ping(pod.Namespace, System.Net.IPAddress.Parse("10.100.0.254"), 3);
            Console.WriteLine($"  ADD: {address} gateway {added.Json.GetProperty("ips")[0].GetProperty("gateway").GetString()} in {addMs} ms (dnsmasq probes a new address with ping for 3 s before offering it)");
            Console.WriteLine($"  dnsmasq's lease file: {lease[2]} for client-id {lease[4]} (MAC {lease[1]}, the master's, shared by every pod)");
            Console.WriteLine($"  pod -> DHCP server 10.100.0.254: {(reached ? "yes" : "NO(!)")}");
            lab.Cni.Del(config, pod, "dhcp-pod").Succeeded("DEL dhcp-pod");
            Wait(() => !File.ReadAllLines(leases).Any(l => l.Length > 0), "dnsmasq to drop the released lease");
            Console.WriteLine("  DEL: RELEASE sent from the leased address; dnsmasq's lease file is empty again");
            return reached && address.Address.ToString().StartsWith("10.100.0.1", StringComparison.Ordinal);
        }
        finally
        {
            Process.Start("/bin/kill", ["-TERM", agent.Id.ToString()])!.WaitForExit();
            if (!agent.WaitForExit(TimeSpan.FromSeconds(10)))
                agent.Kill();
            dnsmasq.Kill();
            dnsmasq.WaitForExit();
        }
    }

    static void Wait(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(15))
                throw new TimeoutException($"waited 15 s for {what}");
            Thread.Sleep(50);
        }
    }
}
