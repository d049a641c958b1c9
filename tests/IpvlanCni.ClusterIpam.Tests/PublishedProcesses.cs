using System.Diagnostics;
using System.Runtime.InteropServices;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>The published executables (make publish), run as a runtime and a unit run them.</summary>
public static partial class Published
{
    public static string Path(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "IpvlanCni.slnx")))
            dir = dir.Parent;
        var path = System.IO.Path.Combine(dir?.FullName ?? "/", "artifacts/cni/bin", name);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run `make publish`");
    }

    public const int SIGKILL = 9, SIGTERM = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Signal(int pid, int signal);

    /// <summary>One CNI call of the standalone IPAM plugin: clean environment, config on stdin.</summary>
    public static Process StartPlugin(string command, string containerId, string config, string cniArgs = "")
    {
        var psi = new ProcessStartInfo(Path("ipvlan-cni-ipam")) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.Environment.Clear();
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_CONTAINERID"] = containerId;
        psi.Environment["CNI_NETNS"] = "/var/run/netns/none";
        psi.Environment["CNI_IFNAME"] = "eth0";
        psi.Environment["CNI_PATH"] = "/opt/cni/bin";
        if (cniArgs.Length > 0)
            psi.Environment["CNI_ARGS"] = cniArgs;
        var p = Process.Start(psi)!;
        p.StandardInput.Write(config);
        p.StandardInput.Close();
        return p;
    }

    /// <summary>Exit code (128 + signal when killed) and stdout.</summary>
    public static (int Code, string Out) Finish(Process p)
    {
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(60_000))
            throw new TimeoutException($"plugin pid {p.Id} did not exit within 60 s");
        return (p.ExitCode, output);
    }

    public static (int Code, string Out) Plugin(string command, string containerId, string config, string cniArgs = "")
    {
        using var p = StartPlugin(command, containerId, config, cniArgs);
        return Finish(p);
    }
}

/// <summary>
/// The published agent (`ipvlan-cni-agent agent`, the etcd client inside) on a socket of its own; killed with SIGKILL
/// or stopped with SIGTERM by the PID it was started with, and restarted on the same socket (the stale socket file
/// of a killed agent is replaced).
/// </summary>
public sealed class AgentProcess : IDisposable
{
    readonly string _dir;
    Process? _process;

    public AgentProcess(string name)
    {
        _dir = Directory.CreateTempSubdirectory($"ipvlan-cni-agent-{name}-").FullName;
        Start();
    }

    public string Socket => System.IO.Path.Combine(_dir, "agent.sock");
    public string LogFile => System.IO.Path.Combine(_dir, "agent.log");
    readonly List<string> _stderr = [];

    /// <summary>Its log file and what it wrote to stderr (a crash's last words).</summary>
    public string Log => (File.Exists(LogFile) ? File.ReadAllText(LogFile) : "(no log)") + Stderr;

    string Stderr
    {
        get
        {
            lock (_stderr)
                return _stderr.Count == 0 ? "" : "\nstderr:\n" + string.Join("\n", _stderr.TakeLast(40));
        }
    }
    public int Starts { get; private set; }

    public void Start()
    {
        if (File.Exists(Socket) && _process is { HasExited: false })
            throw new InvalidOperationException("the agent is running");
        var psi = new ProcessStartInfo(Published.Path("ipvlan-cni-agent")) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "agent", "--socket", Socket, "--lease-dir", System.IO.Path.Combine(_dir, "leases"), "--log-file", LogFile })
            psi.ArgumentList.Add(a);
        _process?.Dispose();
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) lock (_stderr) _stderr.Add(line); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Starts++;
        // Listening once the log says so (a killed agent's stale socket file exists before the new one binds).
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!(File.Exists(LogFile) ? File.ReadAllText(LogFile) : "").Contains($"agent listening on {Socket} (pid {_process.Id}", StringComparison.Ordinal))
        {
            if (_process.HasExited || DateTime.UtcNow > until)
                throw new InvalidOperationException($"the published agent did not start: {Log}");
            Thread.Sleep(20);
        }
    }

    public bool Running => _process is { HasExited: false };

    /// <summary>SIGKILL: no shutdown, requests in flight die with it.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            Published.Signal(p.Id, Published.SIGKILL);
            p.WaitForExit(5000);
        }
    }

    /// <summary>SIGTERM, as systemd stops it; true when it exited in time.</summary>
    public bool Stop()
    {
        if (_process is not { HasExited: false } p)
            return true;
        Published.Signal(p.Id, Published.SIGTERM);
        return p.WaitForExit(10_000);
    }

    public void Dispose()
    {
        if (!Stop())
            Kill();
        _process?.Dispose();
        Directory.Delete(_dir, true);
    }
}
