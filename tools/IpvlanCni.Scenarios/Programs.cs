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
    static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <param name="environment">Variables to set (added to the inherited environment unless <paramref name="inheritEnvironment"/> is false).</param>
    /// <param name="stdin">Written to the child's stdin, which is then closed; null = empty stdin.</param>
    /// <param name="timeout">The child is killed and a TimeoutException thrown when it runs longer (60 s by default).</param>
    public static ProgramResult Run(NetNamespace ns, string file, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, string? stdin = null, bool inheritEnvironment = true,
        TimeSpan? timeout = null) =>
        Finish(Start(ns, file, args, environment, inheritEnvironment), file, stdin, timeout ?? DefaultTimeout, killAfter: null);

    /// <summary>Like <see cref="Run"/>, but SIGKILLs the child <paramref name="killAfter"/> after it started, as kill -9 would.</summary>
    public static ProgramResult RunAndKill(NetNamespace ns, string file, IEnumerable<string> args, TimeSpan killAfter,
        IReadOnlyDictionary<string, string>? environment = null, string? stdin = null, bool inheritEnvironment = true) =>
        Finish(Start(ns, file, args, environment, inheritEnvironment), file, stdin, DefaultTimeout, killAfter);

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

    static ProgramResult Finish(Process process, string file, string? stdin, TimeSpan timeout, TimeSpan? killAfter)
    {
        using var _ = process;
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            if (stdin is not null)
                process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The child may stop reading early (a plugin refusing an oversized config); its answer is what counts.
        }
        if (killAfter is { } delay && !process.WaitForExit(delay))
            process.Kill(); // SIGKILL on Linux
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} did not finish within {timeout}");
        }
        process.WaitForExit();
        return new ProgramResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The full path of an installed program; throws (naming `make deps`) when it is missing.</summary>
    public static string Locate(string name)
    {
        foreach (string dir in new[] { "/usr/sbin", "/usr/bin", "/sbin", "/bin" })
            if (File.Exists(Path.Combine(dir, name)))
                return Path.Combine(dir, name);
        throw new FileNotFoundException($"{name} is not installed: run `make deps`");
    }

    /// <summary>
    /// Echo requests every 0.1 s until the first reply, for at most <paramref name="seconds"/>: true when a reply came
    /// back. One lost packet on a busy single-CPU sandbox does not turn a check red; a path that does not exist stays red.
    /// </summary>
    public static bool Ping(NetNamespace from, IPAddress to, int seconds = 1) => RunPing(from, to, seconds).Succeeded;

    /// <summary><see cref="Ping"/> with ping's own output, for a failure message.</summary>
    public static ProgramResult RunPing(NetNamespace from, IPAddress to, int seconds = 1)
    {
        string[] family = to.AddressFamily == AddressFamily.InterNetworkV6 ? ["-6"] : ["-4"];
        // A deadline (-w), not a reply timeout (-W): a ping whose sends fail would otherwise retry.
        return Run(from, Locate("ping"), [.. family, "-c1", $"-w{seconds}", "-i0.1", "-n", "-q", to.ToString()]);
    }

    /// <summary>
    /// A TCP connection from <paramref name="client"/> to a listener in <paramref name="server"/> that sends one line:
    /// true when the client read it (handshake, data and teardown all made it through).
    /// </summary>
    public static bool TcpConnect(NetNamespace client, NetNamespace server, IPAddress serverAddress, int port)
    {
        string busybox = Locate("busybox");
        using var listener = Start(server, busybox, ["nc", "-l", "-p", port.ToString(), "-w", "3"]);
        try
        {
            listener.StandardInput.Write("reached\n");
            listener.StandardInput.Close();
            for (int attempt = 0; attempt < 20; attempt++)
            {
                var connection = Run(client, busybox, ["nc", "-w", "2", serverAddress.ToString(), port.ToString()], stdin: "");
                if (connection.StdOut.Contains("reached", StringComparison.Ordinal))
                    return true;
                if (!connection.StdErr.Contains("refused", StringComparison.OrdinalIgnoreCase))
                    return false;
                Thread.Sleep(50); // the listener is not bound yet
            }
            return false;
        }
        finally
        {
            if (!listener.WaitForExit(TimeSpan.FromSeconds(3)))
                listener.Kill();
            listener.WaitForExit();
        }
    }
}
