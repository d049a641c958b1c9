using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

public sealed record ProgramResult(int ExitCode, string StdOut, string StdErr)
{
    public bool Succeeded => ExitCode == 0;
    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}

/// <summary>
/// Programs run inside a namespace: Process.Start forks on the calling thread, and NetNamespace.Run's thread has
/// entered the namespace, so the child starts (and stays) there.
/// </summary>
public static class Programs
{
    public const string Busybox = "/bin/busybox";

    public static ProgramResult Run(NetNamespace ns, string file, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, string? stdin = null, bool inheritEnvironment = true)
    {
        using var process = Start(ns, file, args, environment, inheritEnvironment);
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
            process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within 60 s");
        }
        process.WaitForExit();
        return new ProgramResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Starts a program in the namespace and leaves it running (a listener); the caller owns the process.</summary>
    public static Process Start(NetNamespace ns, string file, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, bool inheritEnvironment = true)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
            info.ArgumentList.Add(arg);
        if (!inheritEnvironment)
            info.Environment.Clear();
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;
        return ns.Run(() => Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}"));
    }

    /// <summary>
    /// Echo requests every 0.1 s until the first reply, for at most a second: true when a reply came back. One lost
    /// packet on a busy single-CPU sandbox does not turn a cell red; a path that does not exist stays red.
    /// </summary>
    public static bool Ping(NetNamespace from, IPAddress to)
    {
        string[] family = to.AddressFamily == AddressFamily.InterNetworkV6 ? ["-6"] : ["-4"];
        return Run(from, PingPath.Value, [.. family, "-c1", "-w1", "-i0.1", "-n", "-q", to.ToString()]).Succeeded;
    }

    /// <summary>
    /// A TCP connection from <paramref name="client"/> to a listener in <paramref name="server"/> that sends one line:
    /// true when the client read it (handshake, data and teardown all made it through).
    /// </summary>
    public static bool TcpConnect(NetNamespace client, NetNamespace server, IPAddress serverAddress, int port)
    {
        RequireBusybox();
        using var listener = Start(server, Busybox, ["nc", "-l", "-p", port.ToString(), "-w", "3"]);
        try
        {
            listener.StandardInput.Write("reached\n");
            listener.StandardInput.Close();
            Thread.Sleep(100); // the listener binds before the client connects
            var connection = Run(client, Busybox, ["nc", "-w", "2", serverAddress.ToString(), port.ToString()], stdin: "");
            return connection.StdOut.Contains("reached", StringComparison.Ordinal);
        }
        finally
        {
            if (!listener.WaitForExit(TimeSpan.FromSeconds(3)))
                listener.Kill();
            listener.WaitForExit();
        }
    }

    static void RequireBusybox()
    {
        if (!File.Exists(Busybox))
            throw new FileNotFoundException($"{Busybox} is missing: run `make deps` (it installs busybox-static)");
    }

    static readonly Lazy<string> PingPath = new(() =>
        new[] { "/usr/bin/ping", "/bin/ping" }.FirstOrDefault(File.Exists)
        ?? throw new FileNotFoundException("ping (iputils-ping) is missing: run `make deps`"));
}
