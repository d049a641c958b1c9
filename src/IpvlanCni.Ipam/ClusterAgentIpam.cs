using System.Text.Json;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>
/// IPAM type "ipvlan-cni-ipam": addresses shared by every node through etcd, allocated by the node agent's
/// "cluster-ipam" service (it holds the etcd connection; a plugin process would pay a gRPC connection per ADD).
/// The configuration is parsed here first, so bad input is refused without asking anyone.
/// </summary>
public sealed class ClusterAgentIpam : IIpam, IConflictMarking
{
    public const string TypeName = "ipvlan-cni-ipam";
    const string Service = "cluster-ipam";

    readonly ClusterIpamConfig _config;
    readonly AgentClient _agent;
    /// <summary>Set when this process's ADD never reached the agent: its rollback has nothing to release.</summary>
    bool _agentAbsentOnAdd;

    ClusterAgentIpam(ClusterIpamConfig config, string socketPath)
    {
        _config = config;
        // The agent answers within the config's timeout; the socket waits a little longer so its answer arrives first.
        _agent = new AgentClient(socketPath, TypeName, config.Timeout + TimeSpan.FromSeconds(3));
    }

    public static ClusterAgentIpam Parse(JsonElement ipam, CniRequest request)
    {
        var config = ClusterIpamConfig.Parse(ipam, request);
        string? path = IpamJson.GetString(ipam, "agentSocket", "ipam");
        if (string.IsNullOrEmpty(path))
            path = Agent.AgentProtocol.DefaultSocketPath;
        else if (!Path.IsPathFullyQualified(path) || path.Contains('\0'))
            throw IpamJson.Invalid("ipam.agentSocket", $"\"{path}\" is not an absolute path");
        return new ClusterAgentIpam(config, path);
    }

    public CniResult Allocate(CniRequest request)
    {
        JsonElement? answer;
        try
        {
            answer = _agent.Call(Service, "add", w => Identity(w, request));
        }
        catch (CniException) when (_agent.Unreachable)
        {
            _agentAbsentOnAdd = true;
            throw;
        }
        var held = Read(answer, "ADD");
        // The plugin refuses an IPAM result without addresses (7); the standalone ipvlan-cni-ipam must too.
        if (held.Ips.Count == 0)
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{TypeName}: the agent answered ADD with no addresses (agent result.ips is empty)");
        var dns = _config.HostLocal.ResolvConf is { } path ? ResolvConf.Parse(path) : new CniDns();
        return held with { Routes = [.. _config.HostLocal.Routes], Dns = dns };
    }

    public void Release(CniRequest request)
    {
        if (!_agentAbsentOnAdd)
            _agent.Call(Service, "del", w => Identity(w, request));
    }

    public void SetAside(CniRequest request, System.Net.IPAddress address) =>
        _agent.Call(Service, "set-aside", w =>
        {
            Identity(w, request);
            w.WriteString("address", IpMath.Format(address));
        });

    public void Check(CniRequest request)
    {
        var held = Read(_agent.Call(Service, "check", w => Identity(w, request)), "CHECK");
        if (request.Config.PrevResult is { } prev)
            foreach (var ip in held.Ips)
                if (!prev.Ips.Any(p => p.Address.Equals(ip.Address)))
                    throw new CniException(CniErrorCode.CheckFailed, $"{TypeName}: {IpMath.Format(ip.Address)} is held in etcd but not in prevResult");
    }

    public void Status(CniRequest request)
    {
        try
        {
            _agent.Call(Service, "status", w => Identity(w, request));
        }
        catch (CniException e)
        {
            throw new CniException(CniErrorCode.PluginNotAvailable, e.Message);
        }
    }

    public void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments) =>
        _agent.Call(Service, "gc", w =>
        {
            Identity(w, request);
            w.WriteStartArray("valid");
            foreach (var a in validAttachments)
            {
                w.WriteStartObject();
                w.WriteString("containerId", a.ContainerId);
                w.WriteString("ifName", a.IfName);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });

    static CniResult Read(JsonElement? answer, string op) => answer is { } result
        ? CniResultJson.Read(new CniConfigReader(result, "agent result"), CniVersions.Latest)
        : throw new CniException(CniErrorCode.IpamPluginFailed, $"{TypeName}: the agent answered {op} without addresses");

    /// <summary>The configuration as the runtime gave it (the agent parses it with the same parser) and who asks.</summary>
    static void Identity(Utf8JsonWriter w, CniRequest request)
    {
        w.WriteString("network", request.Config.Name);
        w.WritePropertyName("config");
        using (var doc = JsonDocument.Parse(request.ConfigBytes))
            doc.RootElement.WriteTo(w);
        // GC and STATUS name no attachment.
        if (request.HasAttachment)
        {
            w.WriteString("containerId", request.ContainerId);
            w.WriteString("ifName", request.IfName);
        }
        w.WriteStartArray("cniArgs");
        foreach (var (k, v) in request.Args)
        {
            w.WriteStartArray();
            w.WriteStringValue(k);
            w.WriteStringValue(v);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }
}
