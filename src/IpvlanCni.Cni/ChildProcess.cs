using System.Diagnostics;

namespace IpvlanCni.Cni;

/// <summary>A child process that outlived its deadline and was killed (with its descendants).</summary>
public sealed class ChildProcessTimeoutException(string command, TimeSpan timeout)
    : Exception($"{command} did not finish within {timeout.TotalSeconds:0.#} s and was killed")
{
    public string Command { get; } = command;
}

/// <summary>
/// The one way the plugin runs another program (delegated IPAM, nft, iptables): an argument list and an exact
/// environment, never a shell; stdin written and stdout/stderr read without blocking on each other; and a deadline
/// after which the process tree is killed and <see cref="ChildProcessTimeoutException"/> is thrown.
/// </summary>
public static class ChildProcess
{
    public sealed record Outcome(int ExitCode, byte[] Output, string Error);

    public static Outcome Run(string path, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string>? environment,
        ReadOnlyMemory<byte> stdin, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(path)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        if (environment is not null)
        {
            start.Environment.Clear();
            foreach (var (key, value) in environment)
                start.Environment[key] = value;
        }

        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.Start();
        using var output = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(output);
        var error = process.StandardError.ReadToEndAsync();
        var write = WriteInput(process, stdin);
        string command = Path.GetFileName(path) + (arguments.Count > 0 ? " " + string.Join(' ', arguments) : "");
        TimeSpan Left() => timeout - clock.Elapsed is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero;
        // Streams first: a process cannot exit while it blocks writing a full pipe; then the exit itself.
        if (!Task.WaitAll([copy, error, write], Left()) || !process.WaitForExit(Left()))
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited between the deadline and the kill.
            }
            process.WaitForExit(1000);
            throw new ChildProcessTimeoutException(command, timeout);
        }
        process.WaitForExit(); // drains the exit status; the streams are at their ends already
        return new Outcome(process.ExitCode, output.ToArray(), error.Result.Trim());
    }

    static async Task WriteInput(Process process, ReadOnlyMemory<byte> stdin)
    {
        try
        {
            if (!stdin.IsEmpty)
                await process.StandardInput.BaseStream.WriteAsync(stdin).ConfigureAwait(false);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The program exited without reading stdin; its exit status and output tell why.
        }
    }
}
