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

        // stdin is read and parsed once, by the dispatcher; the log file comes from that parse (or the environment).
        // From a terminal (VERSION by hand) there is nothing to read.
        using var stdin = StandardStream.IsInputTerminal ? Stream.Null : StandardStream.OpenInput();
        // A relative IPVLAN_CNI_LOG would land wherever the runtime's working folder is: it is not used (and the
        // request is refused with code 4 naming it).
        CniLog? log = environment.GetValueOrDefault(LogFileVariable) is { Length: > 0 } fromEnvironment && Path.IsPathFullyQualified(fromEnvironment)
            ? new CniLog(fromEnvironment)
            : null;

        // Plain read(2)/write(2) streams, not Console's: those set up the terminal and start a thread on first use.
        using var stdout = StandardStream.OpenOutput();
        return CniDispatcher.Run(new IpvlanPlugin(), environment, stdin, stdout, log,
            root => PluginConfig.TryReadLogFile(root) is { } path ? new CniLog(path) : null);
    }
}
