using System.Collections;
using IpvlanCni.Cni;
using IpvlanCni.Interop;

namespace IpvlanCni.Plugin;

/// <summary>The process entry: real environment and streams in, the dispatcher does the rest.</summary>
public static class PluginMain
{
    /// <summary>Overrides the configuration's logFile, for a node-wide log without editing conflists.</summary>
    public const string LogFileVariable = "IPVLAN_CNI_LOG";

    public static int Run(string[] args)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
            environment[(string)entry.Key] = (string?)entry.Value ?? "";

        // Read stdin once (bounded, one byte past the limit so the dispatcher can refuse it) to find the log file.
        // From a terminal (VERSION by hand) there is nothing to read.
        var config = new MemoryStream();
        if (!StandardStream.IsInputTerminal)
        {
            using var stdin = StandardStream.OpenInput();
            CopyBounded(stdin, config, CniDispatcher.MaxStdinBytes + 1);
            config.Position = 0;
        }
        // A relative IPVLAN_CNI_LOG would land wherever the runtime's working folder is: it is not used (and the
        // request is refused with code 4 naming it).
        string? logPath = environment.GetValueOrDefault(LogFileVariable) is { Length: > 0 } fromEnvironment
            ? (Path.IsPathFullyQualified(fromEnvironment) ? fromEnvironment : null)
            : PluginConfig.TryReadLogFile(config.GetBuffer().AsMemory(0, (int)config.Length));

        // Plain read(2)/write(2) streams, not Console's: those set up the terminal and start a thread on first use.
        using var stdout = StandardStream.OpenOutput();
        return CniDispatcher.Run(new IpvlanPlugin(), environment, config, stdout, logPath is null ? null : new CniLog(logPath));
    }

    static void CopyBounded(Stream from, Stream to, int limit)
    {
        var buffer = new byte[4 * 1024]; // a configuration is a few KiB; each page allocated is a page resident
        int total = 0, read;
        while (total < limit && (read = from.Read(buffer, 0, Math.Min(buffer.Length, limit - total))) > 0)
        {
            to.Write(buffer, 0, read);
            total += read;
        }
    }
}
