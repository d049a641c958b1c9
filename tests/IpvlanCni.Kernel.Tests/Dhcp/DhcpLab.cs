using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Dhcp;

/// <summary>A line of dnsmasq's lease file: "expiry mac address hostname client-id".</summary>
public sealed record DnsmasqLease(long Expiry, string Mac, IPAddress Address, string ClientId);

/// <summary>
/// The business network with a DHCP server: a <see cref="Lab"/> whose l2 master ens10 (untagged, the node has no
/// address on it) faces the business peer, where dnsmasq serves 10.10.0.100-199 (router and DNS the peer itself,
/// .254) with a 2-minute lease (dnsmasq's minimum) and T1/T2 forced shorter; and the agent, run from the published
/// binary in the node's namespace. Both are started here and stopped by their PID.
/// </summary>
public sealed class DhcpLab : IDisposable
{
    public static readonly IPAddress Server = IPAddress.Parse("10.10.0.254");
    readonly List<Process> _processes = [];

    public DhcpLab(int renewSeconds = 8, int rebindSeconds = 100)
    {
        Lab = new Lab(new Layout("dhcp", [Segment], DefaultRouteOnMaster: false));
        Directory.CreateDirectory(Folder);
        RenewSeconds = renewSeconds;
        RebindSeconds = rebindSeconds;
    }

    public static Segment Segment { get; } = new(IpvlanMode.L2, 0, NodeOwnsMaster: false);
    public Lab Lab { get; }
    public int RenewSeconds { get; }
    public int RebindSeconds { get; }
    public string Folder => $"/tmp/{Lab.Name}/dhcp";
    public string LeaseFile => $"{Folder}/dnsmasq.leases";
    public string AgentSocket => $"{Folder}/agent.sock";
    public string AgentLeases => $"{Folder}/agent-leases";
    public string AgentLog => $"{Folder}/agent.log";
    public Process? Dnsmasq { get; private set; }
    public Process? Agent { get; private set; }

    public void StartDnsmasq(params string[] extra) => StartDnsmasq("10.10.0.100,10.10.0.199", extra);

    /// <param name="range">first,last address dnsmasq hands out.</param>
    public void StartDnsmasq(string range, string[] extra)
    {
        File.WriteAllText(LeaseFile, "");
        Dnsmasq = Start(Lab.Business, Programs.Locate("dnsmasq"),
        [
            "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0", "--user=root",
            "--interface=eth0", "--bind-interfaces", "--dhcp-authoritative", "--log-dhcp", $"--log-facility={Folder}/dnsmasq.log",
            $"--dhcp-range={range},255.255.255.0,2m", $"--dhcp-leasefile={LeaseFile}",
            $"--dhcp-option=option:router,{Server}", $"--dhcp-option=option:dns-server,{Server}",
            $"--dhcp-option=option:T1,{RenewSeconds}", $"--dhcp-option=option:T2,{RebindSeconds}",
            // No ICMP probe of an address before offering it (dnsmasq waits 3 s for an answer): tests measure the client.
            "--no-ping", "--pid-file=", .. extra,
        ]);
        // dnsmasq is ready when its log says so.
        WaitFor(() => File.Exists($"{Folder}/dnsmasq.log") && File.ReadAllText($"{Folder}/dnsmasq.log").Contains("DHCP, IP range"),
            TimeSpan.FromSeconds(10), "dnsmasq to start");
    }

    public void StopDnsmasq() => Stop(Dnsmasq);

    public Process StartAgent()
    {
        var agent = Start(Lab.Node, CniRuntime.PluginPath,
            ["agent", "--socket", AgentSocket, "--lease-dir", AgentLeases, "--log-file", AgentLog]);
        Agent = agent;
        WaitFor(() => File.Exists(AgentLog) && File.ReadAllText(AgentLog).Contains($"listening on {AgentSocket} (pid {agent.Id}"),
            TimeSpan.FromSeconds(10), "the agent to listen");
        return agent;
    }

    /// <summary>SIGKILL: no chance to save or say goodbye.</summary>
    public void KillAgent()
    {
        Agent!.Kill();
        Agent.WaitForExit();
    }

    /// <summary>SIGTERM, as systemd stops it; returns its exit code.</summary>
    public int TerminateAgent()
    {
        Process.Start("/bin/kill", ["-TERM", Agent!.Id.ToString()])!.WaitForExit();
        if (!Agent.WaitForExit(TimeSpan.FromSeconds(15)))
            throw new TimeoutException("the agent did not exit within 15 s of SIGTERM");
        return Agent.ExitCode;
    }

    public JsonObject Config(string network) => new()
    {
        ["cniVersion"] = "1.1.0",
        ["name"] = network,
        ["type"] = "ipvlan-cni",
        ["master"] = Segment.Master,
        ["mode"] = "l2",
        ["stateDir"] = Lab.StateDir,
        ["ipam"] = new JsonObject { ["type"] = "ipvlan-cni-dhcp", ["agentSocket"] = AgentSocket },
    };

    public IReadOnlyList<DnsmasqLease> Leases() => [.. File.ReadAllLines(LeaseFile)
        .Where(l => l.Length > 0 && !l.StartsWith("duid", StringComparison.Ordinal))
        .Select(l => l.Split(' '))
        .Select(f => new DnsmasqLease(long.Parse(f[0]), f[1], IPAddress.Parse(f[2]), f[4]))];

    public string AgentLogText => File.Exists(AgentLog) ? File.ReadAllText(AgentLog) : "(no agent log)";
    public string DnsmasqLogText => File.Exists($"{Folder}/dnsmasq.log") ? File.ReadAllText($"{Folder}/dnsmasq.log") : "(no dnsmasq log)";

    public void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > timeout)
                throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}\nagent log:\n{AgentLogText}\ndnsmasq log (tail):\n{Tail(DnsmasqLogText)}");
            Thread.Sleep(100);
        }
    }

    static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(40));

    Process Start(NetNamespace ns, string file, string[] args)
    {
        var process = Programs.Start(ns, file, args);
        _processes.Add(process);
        // Drain the pipes so a chatty child never blocks.
        process.StandardOutput.ReadToEndAsync();
        process.StandardError.ReadToEndAsync();
        return process;
    }

    static void Stop(Process? process)
    {
        if (process is null || process.HasExited)
            return;
        process.Kill();
        process.WaitForExit();
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            Stop(process);
            process.Dispose();
        }
        Lab.Dispose();
    }
}
