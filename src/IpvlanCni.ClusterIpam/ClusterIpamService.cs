using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using IpvlanCni.Agent;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam;

/// <summary>
/// The agent's "cluster-ipam" service: holds one etcd connection per distinct set of endpoints and credentials, so
/// that an ADD costs two round trips to etcd instead of a gRPC connection per plugin process. Requests carry the
/// network configuration as the runtime gave it; the service parses it with the same parser as the plugin.
/// <code>
/// → {"service":"cluster-ipam","op":"add","args":{"config":{...},"containerId":"c1","ifName":"eth0","cniArgs":[["K8S_POD_NAME","p"]]}}
/// ← {"ok":true,"result":{"cniVersion":"1.1.0","ips":[...]}}
/// </code>
/// Ops: add, del, check (the held addresses), gc (args.valid), status (a quorum read).
/// </summary>
public sealed class ClusterIpamService(AgentLog log) : IAgentService
{
    public const string ServiceName = "cluster-ipam";

    readonly ConcurrentDictionary<string, Lazy<(EtcdKvStore Store, ClusterIpamEngine Engine)>> _connections = new();
    readonly string _bootId = ReadBootId();

    public static IAgentService Create(AgentLog log) => new ClusterIpamService(log);

    public string Name => ServiceName;

    public void Start() { }

    public string Describe() =>
        $"{_connections.Count} etcd connection(s), {_connections.Values.Where(l => l.IsValueCreated).Sum(l => l.Value.Engine.RoundTrips)} round trips";

    public Action<Utf8JsonWriter>? Handle(AgentRequest request, DateTimeOffset deadline, CancellationToken stopping)
    {
        var (config, cni) = ParseConfig(request);
        var end = DateTimeOffset.UtcNow + config.Timeout;
        if (end > deadline)
            end = deadline;
        var engine = _connections.GetOrAdd(config.ConnectionKey,
            _ => new(() => { var s = new EtcdKvStore(config); return (s, new ClusterIpamEngine(s)); })).Value.Engine;
        // GC and STATUS name no attachment: their identity is empty, and only add/del/check require one.
        var attachment = new Attachment(config.Node, cni.HasAttachment ? cni.ContainerId : "", cni.HasAttachment ? cni.IfName : "")
        {
            PodNamespace = Arg(cni, "K8S_POD_NAMESPACE"),
            PodName = Arg(cni, "K8S_POD_NAME"),
            PodUid = Arg(cni, "K8S_POD_UID"),
            BootId = _bootId,
            BootMilliseconds = Environment.TickCount64,
        };
        try
        {
            switch (request.Op)
            {
                case "add":
                {
                    RequireAttachment(cni);
                    var record = engine.Add(config, attachment, end);
                    log.Write($"cluster-ipam add {config.Network} {attachment.Id}: {string.Join(" ", record.Addresses.Select(a => IpMath.Format(a.Address)))}");
                    return w => WriteResult(w, record);
                }
                case "del":
                    RequireAttachment(cni);
                    engine.Release(config, attachment, end);
                    log.Write($"cluster-ipam del {config.Network} {attachment.Id}");
                    return null;
                case "set-aside":
                {
                    RequireAttachment(cni);
                    string text = request.Args.GetRequiredString("address");
                    if (!IpMath.TryParse(text, out var address))
                        throw new CniException(CniErrorCode.InvalidNetworkConfig, $"cluster-ipam: \"{text}\" is not an address");
                    engine.SetAside(config, attachment, address, end);
                    log.Write($"cluster-ipam set-aside {config.Network} {attachment.Id}: {IpMath.Format(address)} answered on the wire");
                    return null;
                }
                case "check":
                {
                    RequireAttachment(cni);
                    var record = engine.Get(config, attachment, end);
                    if (record is not { Live: true })
                        throw new CniException(CniErrorCode.CheckFailed, $"ipvlan-cni-ipam: {attachment.Id} holds no address on network {config.Network}");
                    return w => WriteResult(w, record);
                }
                case "gc":
                {
                    var valid = request.Args.GetArray("valid").Select(a => (a.GetRequiredString("containerId"), a.GetRequiredString("ifName"))).ToList();
                    var released = engine.GarbageCollect(config, config.Node, valid, _bootId, Environment.TickCount64, end);
                    foreach (var id in released)
                        log.Write($"cluster-ipam gc {config.Network} released {id}");
                    return null;
                }
                case "status":
                    engine.Store.Read([Read.One(new KeyLayout(config.KeyPrefix, config.Network).Root)], end);
                    return null;
                default:
                    throw new CniException(CniErrorCode.InvalidNetworkConfig, $"cluster-ipam: unknown op \"{request.Op}\"");
            }
        }
        catch (StoreRefusedException e)
        {
            log.Write($"cluster-ipam {request.Op} {config.Network} {attachment.Id}: {e.Message}");
            throw new CniException(CniErrorCode.TryAgainLater,
                $"ipvlan-cni-ipam: etcd ({string.Join(", ", config.Endpoints)}) refused us; {(request.Op == "add" ? "nothing was allocated" : "nothing was changed")}: {e.Message}");
        }
        catch (StoreUnavailableException e)
        {
            log.Write($"cluster-ipam {request.Op} {config.Network} {attachment.Id}: etcd unavailable: {e.Message}");
            throw new CniException(CniErrorCode.TryAgainLater,
                $"ipvlan-cni-ipam: etcd ({string.Join(", ", config.Endpoints)}) is unreachable or has no quorum; {(request.Op == "add" ? "nothing was allocated" : "nothing was changed")}: {e.Message}");
        }
        catch (InvalidDataException e)
        {
            throw new CniException(CniErrorCode.IpamPluginFailed, $"ipvlan-cni-ipam: {e.Message}");
        }
    }

    /// <summary>Compact: the agent's answer is one line, and the result writer indents.</summary>
    static void WriteResult(Utf8JsonWriter w, AttachmentRecord record)
    {
        using var doc = JsonDocument.Parse(CniResultJson.Write(Result(record), CniVersions.Latest));
        doc.RootElement.WriteTo(w);
    }

    static CniResult Result(AttachmentRecord record) => new()
    {
        Ips = [.. record.Addresses.Select(a => new CniIpConfig(a.Address) { Gateway = a.Gateway })],
    };

    static void RequireAttachment(CniRequest cni)
    {
        if (!cni.HasAttachment)
            throw new CniException(CniErrorCode.InvalidEnvironment, "cluster-ipam: containerId and ifName are required");
    }

    static string Arg(CniRequest request, string key) => request.Args.FirstOrDefault(kv => kv.Key == key).Value ?? "";

    /// <summary>The request's configuration and identity as a CniRequest, checked as the plugin checks its own.</summary>
    static (ClusterIpamConfig, CniRequest) ParseConfig(AgentRequest request)
    {
        var configNode = request.Args.GetObject("config") ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, "cluster-ipam: args.config missing");
        var bytes = Encoding.UTF8.GetBytes(configNode.Element.GetRawText());
        // Both become parts of etcd keys: parsed by the spec's rules, so no '/' can reach another key.
        var containerId = request.Args.GetString("containerId") is { Length: > 0 } idText
            ? ContainerId.Parse(idText, "cluster-ipam: containerId") : null;
        var ifName = request.Args.GetString("ifName") is { Length: > 0 } nameText
            ? InterfaceName.Parse(nameText, "cluster-ipam: ifName", CniErrorCode.InvalidEnvironment) : null;
        var args = request.Args.GetArray("cniArgs").Select(p => p.AsArray() is [var k, var v] ? KeyValuePair.Create(k.AsString(), v.AsString())
            : throw new CniException(CniErrorCode.InvalidEnvironment, "cluster-ipam: cniArgs are [key, value] pairs")).ToList();
        var cni = new CniRequest
        {
            Command = CniCommand.Add,
            Args = args,
            ConfigBytes = bytes,
            Config = new NetworkConfig
            {
                CniVersion = configNode.GetString("cniVersion") ?? CniVersions.Latest,
                Name = NetworkName.Parse(configNode.GetString("name"), "name"),
                Type = configNode.GetString("type") ?? "",
            },
        };
        var ipam = configNode.GetObject("ipam") ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, "ipam: missing");
        // STATUS and GC name no attachment: the request carries an identity only when one was sent.
        if (containerId is not null)
            cni = cni with { ContainerId = containerId };
        if (ifName is not null)
            cni = cni with { IfName = ifName };
        return (ClusterIpamConfig.Parse(ipam.Element, cni), cni);
    }

    static string ReadBootId()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        foreach (var c in _connections.Values.Where(l => l.IsValueCreated))
            c.Value.Store.Dispose();
    }
}
