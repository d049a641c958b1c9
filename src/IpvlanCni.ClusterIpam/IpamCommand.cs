using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam;

/// <summary>
/// `ipvlan-cni ipam show|check|release|forget --config FILE`: the operator's view of one network's cluster IPAM,
/// read from etcd at one revision (in process: this is not the ADD path). Changes are the same Txns the allocator
/// uses: release frees one attachment as it was read; forget frees every attachment and block of a node that will
/// not come back (no node ever does that to another on its own).
/// </summary>
public static class IpamCommand
{
    const string Usage = """
        usage: ipvlan-cni ipam show    --config FILE [--node NODE] [--json]
               ipvlan-cni ipam check   --config FILE [--json]
               ipvlan-cni ipam release --config FILE --address IP
               ipvlan-cni ipam forget  --config FILE --node NODE
        FILE: the network's .conf or .conflist with the ipvlan-cni-ipam plugin (its etcdEndpoints, keyPrefix, ranges).
        """;

    public static int Run(ReadOnlySpan<string> args) => Run(args.ToArray(), Console.Out, Console.Error);

    const string Help = """
        Usage: ipvlan-cni ipam show|check|release|forget --config FILE [OPTION]...

        The cluster IPAM's allocations in etcd, read at one revision: show them (by node, block and pod), check
        their consistency (one owner per address, counts, nothing outside the ranges), release one address, or
        forget a node that will not come back (its allocations and blocks). No node ever reclaims another node's
        addresses on its own: only forget does.

        Options:
          --config FILE   the network's .conf or .conflist with the ipvlan-cni-ipam plugin (etcdEndpoints, ranges)
          --node NODE     show: only this node; forget: the node to forget
          --address IP    release: the address
          --json          show, check: JSON instead of a table
          -h, --help      print this help

        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args is ["-h" or "--help", ..])
        {
            stdout.Write(Help);
            return 0;
        }
        if (args.Length == 0 || args[0] is not ("show" or "check" or "release" or "forget"))
        {
            stderr.WriteLine(Usage);
            return 2;
        }
        string? file = null, node = null, address = null;
        bool json = false;
        for (int i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--config": file = Value(); break;
                    case "--node": node = Value(); break;
                    case "--address": address = Value(); break;
                    case "--json": json = true; break;
                    default: throw new ArgumentException($"unknown option {args[i]}");
                }
            }
            catch (ArgumentException e)
            {
                stderr.WriteLine($"ipvlan-cni ipam: {e.Message}\n{Usage}");
                return 2;
            }
        }
        if (file is null || (args[0] == "release" && address is null) || (args[0] == "forget" && node is null))
        {
            stderr.WriteLine(Usage);
            return 2;
        }
        try
        {
            var config = LoadConfig(file);
            if (node is not null)
                ClusterIpamConfig.ValidateNodeName(node, "--node");
            using var store = new EtcdKvStore(config);
            var deadline = DateTimeOffset.UtcNow + config.Timeout;
            var view = ClusterView.Read(store, config, deadline);
            switch (args[0])
            {
                case "show":
                    view.Show(stdout, node, json);
                    return 0;
                case "check":
                    var problems = view.Check();
                    if (json)
                        WriteJson(stdout, w =>
                        {
                            w.WriteStartObject();
                            w.WriteNumber("revision", view.Revision);
                            w.WriteBoolean("consistent", problems.Count == 0);
                            w.WriteStartArray("problems");
                            foreach (var p in problems)
                                w.WriteStringValue(p);
                            w.WriteEndArray();
                            w.WriteEndObject();
                        });
                    else
                    {
                        foreach (var p in problems)
                            stdout.WriteLine(p);
                        stdout.WriteLine(problems.Count == 0
                            ? $"consistent at revision {view.Revision}: {view.Addresses.Count} addresses, {view.LiveAttachments.Count()} attachments, {view.Blocks.Count} blocks"
                            : $"{problems.Count} problem(s) at revision {view.Revision}");
                    }
                    return problems.Count == 0 ? 0 : 1;
                case "release":
                    if (!IpMath.TryParse(address, out var ip))
                        throw new CniException(CniErrorCode.InvalidNetworkConfig, $"--address: \"{address}\" is not an IP address");
                    stdout.WriteLine(view.Release(store, ip, deadline));
                    return 0;
                default:
                    stdout.WriteLine(view.Forget(store, node!, deadline));
                    return 0;
            }
        }
        catch (Exception e) when (e is CniException or StoreUnavailableException or IOException or JsonException or InvalidDataException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"ipvlan-cni ipam {args[0]}: {e.Message}");
            return 1;
        }
    }

    /// <summary>The ipvlan-cni-ipam plugin of a .conf or .conflist, parsed as the agent parses it.</summary>
    public static ClusterIpamConfig LoadConfig(string file)
    {
        var root = JsonNode.Parse(File.ReadAllBytes(file)) as JsonObject ?? throw new InvalidDataException($"{file}: not a JSON object");
        var plugin = root;
        if (root["plugins"] is JsonArray plugins)
            plugin = plugins.OfType<JsonObject>().FirstOrDefault(p => p["ipam"] is JsonObject i && (string?)i["type"] == ClusterAgentIpam.TypeName)
                ?? throw new InvalidDataException($"{file}: no plugin with ipam type {ClusterAgentIpam.TypeName}");
        var conf = (JsonObject)plugin.DeepClone();
        conf["name"] = (string?)root["name"];
        conf["cniVersion"] = (string?)root["cniVersion"] ?? CniVersions.Latest;
        var bytes = Encoding.UTF8.GetBytes(conf.ToJsonString());
        using var doc = JsonDocument.Parse(bytes);
        var request = new CniRequest
        {
            Command = CniCommand.Status,
            ConfigBytes = bytes,
            Config = new NetworkConfig
            {
                CniVersion = (string?)conf["cniVersion"] ?? CniVersions.Latest,
                Name = NetworkName.Parse((string?)conf["name"], $"{file}: name"),
                Type = (string?)conf["type"] ?? "",
            },
        };
        if (!doc.RootElement.TryGetProperty("ipam", out var ipam))
            throw new InvalidDataException($"{file}: ipam missing");
        return ClusterIpamConfig.Parse(ipam.Clone(), request);
    }

    internal static void WriteJson(TextWriter stdout, Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            write(w);
        stdout.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }
}
