using System.Text.Json;
using IpvlanCni.Agent;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>
/// IPAM type "ipvlan-cni-dhcp": leases from the node's DHCP server, held and renewed by the node agent
/// (`ipvlan-cni agent`), asked over its unix socket. The plugin stays a short-lived process: one connection, one
/// request line, one answer line, all under a deadline.
/// </summary>
public sealed class DhcpAgentIpam : IIpam
{
    public const string TypeName = "ipvlan-cni-dhcp";
    /// <summary>Longer than the agent's own request deadline (20 s by default), so the agent's answer arrives first.</summary>
    static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(25);

    public DhcpAgentIpam(string socketPath)
    {
        SocketPath = socketPath;
        _agent = new AgentClient(socketPath, TypeName, RequestTimeout);
    }

    readonly AgentClient _agent;

    public string SocketPath { get; }

    /// <summary>ipam.agentSocket (absolute) chooses the agent's socket; nothing else is read here.</summary>
    public static DhcpAgentIpam Parse(JsonElement ipam)
    {
        string? path = IpamJson.GetString(ipam, "agentSocket", "ipam");
        if (string.IsNullOrEmpty(path))
            return new DhcpAgentIpam(AgentProtocol.DefaultSocketPath);
        if (!Path.IsPathFullyQualified(path) || path.Contains('\0'))
            throw IpamJson.Invalid("ipam.agentSocket", $"\"{path}\" is not an absolute path");
        return new DhcpAgentIpam(path);
    }

    /// <summary>Set when this process's ADD never reached the agent: its rollback has no lease to release.</summary>
    bool _agentAbsentOnAdd;

    public CniResult Allocate(CniRequest request)
    {
        JsonElement? result;
        try
        {
            result = Call(request, "dhcp", "add", w => Identity(w, request));
        }
        catch (CniException) when (_agent.Unreachable)
        {
            _agentAbsentOnAdd = true;
            throw;
        }
        var lease = result ?? throw new CniException(CniErrorCode.IpamPluginFailed, "ipvlan-cni-dhcp: the agent answered ADD without a lease");
        return CniResultJson.Read(new CniConfigReader(lease, "agent result"), CniVersions.Latest);
    }

    public void Release(CniRequest request)
    {
        if (!_agentAbsentOnAdd)
            Call(request, "dhcp", "del", w => Identity(w, request));
    }

    public void Check(CniRequest request)
    {
        var address = request.Config.PrevResult?.Ips.FirstOrDefault(ip => ip.Address.IsIPv4)?.Address.Address;
        Call(request, "dhcp", "check", w =>
        {
            Identity(w, request);
            if (address is not null)
                w.WriteString("address", address.ToString());
        });
    }

    public void Status(CniRequest request)
    {
        try
        {
            Call(request, "agent", "ping", _ => { });
        }
        catch (CniException e)
        {
            throw new CniException(CniErrorCode.PluginNotAvailable, e.Message);
        }
    }

    public void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments) =>
        Call(request, "dhcp", "gc", w =>
        {
            w.WriteString("network", request.Config.Name);
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

    static void Identity(Utf8JsonWriter w, CniRequest request)
    {
        w.WriteString("network", request.Config.Name);
        w.WriteString("containerId", request.ContainerId);
        w.WriteString("ifName", request.IfName);
        w.WriteString("netns", request.NetnsPath);
    }

    JsonElement? Call(CniRequest request, string service, string op, Action<Utf8JsonWriter> args) => _agent.Call(service, op, args);
}
