using System.Net;
using IpvlanCni.Interop;
using IpvlanCni.Netlink;
using IpvlanCni.Network;
using IpvlanCni.Plugin;

namespace IpvlanCni.Explain;

/// <summary>
/// `ipvlan-cni explain --from SRC --to DST [--json] [--state-dir DIR]`: SRC is a pod's namespace path or "node", DST
/// an IPv4 or IPv6 address. Exit code 0 reachable, 1 unreachable, 3 unknown, 2 bad arguments.
/// </summary>
public static class ExplainCommand
{
    const string Usage = "usage: ipvlan-cni explain --from <netns path | node> --to <address> [--json] [--state-dir <dir>]\n" +
        "                           [--save-snapshot <file>] [--snapshot <file> (replay a saved node instead of this one)]";

    const string Help = """
        Usage: ipvlan-cni explain --from SRC --to DST [OPTION]...

        Walk an ICMP echo round trip from SRC (a pod's network namespace path, or "node") to DST (an IPv4 or IPv6
        address) through a model of the kernel's ipvlan datapath over the node's real state, hop by hop, each hop
        naming the kernel function that decides it; end with the verdict and, when unreachable, the cause and the
        configuration that fixes it. Exit status: 0 reachable, 1 unreachable, 3 unknown, 2 bad arguments.

        Options:
          --from SRC            a network namespace path (a pod) or "node"
          --to DST              the destination address
          --json                print the trace as JSON ("verdict": "reachable" | "unreachable" | "unknown")
          --state-dir DIR       the plugin's records, for which networks have ipMasq (default /var/lib/cni/ipvlan-cni)
          --save-snapshot FILE  also save the node's state as read, to replay it elsewhere
          --snapshot FILE       replay a saved node instead of reading this one
          -h, --help            print this help

        """;

    public static int Run(string[] args) => args is ["-h" or "--help", ..]
        ? Print(Help, Console.Out)
        : Run(args, Console.Out, Console.Error);

    static int Print(string text, TextWriter to)
    {
        to.Write(text);
        return 0;
    }

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? from = null, to = null, stateDir = PluginConfig.DefaultStateDir, replay = null, save = null;
        bool json = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--from" when i + 1 < args.Length: from = args[++i]; break;
                case "--to" when i + 1 < args.Length: to = args[++i]; break;
                case "--state-dir" when i + 1 < args.Length: stateDir = args[++i]; break;
                case "--snapshot" when i + 1 < args.Length: replay = args[++i]; break;
                case "--save-snapshot" when i + 1 < args.Length: save = args[++i]; break;
                case "--json": json = true; break;
                default:
                    stderr.WriteLine($"explain: unexpected argument \"{args[i]}\"\n{Usage}");
                    return 2;
            }
        }
        if (from is null || to is null)
        {
            stderr.WriteLine($"explain: --from and --to are required\n{Usage}");
            return 2;
        }
        // One address parser for the product: the CNI side's (Go's net.ParseIP rules, no leading zeros).
        if (!IpvlanCni.Ipam.IpMath.TryParse(to, out var address))
        {
            stderr.WriteLine($"explain: --to \"{to}\" is not an IPv4 or IPv6 address");
            return 2;
        }
        if (!Path.IsPathRooted(stateDir))
        {
            stderr.WriteLine($"explain: --state-dir \"{stateDir}\" is not an absolute path");
            return 2;
        }

        Trace trace;
        if (replay is not null)
        {
            NodeSnapshot recorded;
            try
            {
                recorded = NodeSnapshot.FromJson(File.ReadAllText(replay));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            {
                stderr.WriteLine($"explain: --snapshot {replay}: {e.Message}");
                return 2;
            }
            string id = from == "node" ? recorded.Node : from;
            if (recorded.Namespaces.All(n => n.Id != id))
            {
                stderr.WriteLine($"explain: --from {from}: no such namespace in {replay}");
                return 2;
            }
            trace = Explainer.Explain(recorded, id, address);
            stdout.Write(json ? trace.ToJson() + "\n" : trace.ToText());
            return ExitCode(trace);
        }
        try
        {
            using var node = NetNamespace.OpenCurrent();
            using var pod = from == "node" ? null : NetNamespace.Open(from);
            using var live = pod is null || pod.IsSame(node) ? LiveNode.Read(node, stateDir) : LiveNode.Read(node, stateDir, from);
            if (save is not null)
                File.WriteAllText(save, live.ToSnapshot().ToJson());
            trace = Explainer.Explain(live.View, pod is null ? SnapshotReader.NodeId : live.IdOf(node, pod), address);
        }
        catch (NamespaceException e)
        {
            stderr.WriteLine($"explain: --from {from}: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"explain: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is NetlinkException or SystemCallException)
        {
            // A namespace's routing is read when the walk reaches it (LiveNode): a failure there ends the answer.
            stderr.WriteLine($"explain: reading the node: {e.Message}");
            return 2;
        }
        stdout.Write(json ? trace.ToJson() + "\n" : trace.ToText());
        return ExitCode(trace);
    }

    static int ExitCode(Trace trace) => trace.Verdict switch { Verdict.Reachable => 0, Verdict.Unreachable => 1, _ => 3 };

    /// <summary>The same question in-process, for tests and tools: the live node read as the walk needs it, as the command does.</summary>
    public static Trace Explain(NetNamespace node, string stateDir, NetNamespace? from, IPAddress to)
    {
        using var live = from is null || from.IsSame(node) ? LiveNode.Read(node, stateDir) : LiveNode.Read(node, stateDir, from.Path);
        return Explainer.Explain(live.View, from is null ? SnapshotReader.NodeId : live.IdOf(node, from), to);
    }
}
