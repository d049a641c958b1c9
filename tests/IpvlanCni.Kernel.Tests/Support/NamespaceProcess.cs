using System.Diagnostics;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Support;

public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}

/// <summary>
/// Starts a process inside a namespace: Process.Start forks on the calling thread, and NetNamespace.Run's thread
/// has entered the namespace, so the child starts there.
/// </summary>
public static class NamespaceProcess
{
    /// <param name="environment">Variables to set (added to the inherited environment unless <paramref name="inheritEnvironment"/> is false).</param>
    /// <param name="stdin">Written to the child's stdin, which is then closed; null = empty stdin.</param>
    public static ProcessResult Run(NetNamespace ns, string file, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null, string? stdin = null,
        bool inheritEnvironment = true, TimeSpan? timeout = null) =>
        ns.Run(() => Start(file, args, environment, stdin, inheritEnvironment, timeout ?? TimeSpan.FromSeconds(60), killAfter: null));

    /// <summary>Like <see cref="Run"/>, but SIGKILLs the child <paramref name="killAfter"/> after it started, as kill -9 would.</summary>
    public static ProcessResult RunAndKill(NetNamespace ns, string file, IEnumerable<string> args, TimeSpan killAfter,
        IReadOnlyDictionary<string, string>? environment = null, string? stdin = null, bool inheritEnvironment = true) =>
        ns.Run(() => Start(file, args, environment, stdin, inheritEnvironment, TimeSpan.FromSeconds(60), killAfter));

    static ProcessResult Start(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment,
        string? stdin, bool inheritEnvironment, TimeSpan timeout, TimeSpan? killAfter)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        if (!inheritEnvironment)
            info.Environment.Clear();
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
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
        return new ProcessResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
