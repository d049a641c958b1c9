using System.Net.Sockets;
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
    /// <summary>Connecting to a live agent is immediate; a full backlog is retried this long.</summary>
    static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);
    /// <summary>Longer than the agent's own request deadline (20 s by default), so the agent's answer arrives first.</summary>
    static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(25);

    public DhcpAgentIpam(string socketPath) => SocketPath = socketPath;

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
    /// <summary>The last connection attempt found no agent.</summary>
    bool _unreachable;

    public CniResult Allocate(CniRequest request)
    {
        JsonElement? result;
        try
        {
            result = Call(request, "dhcp", "add", w => Identity(w, request));
        }
        catch (CniException) when (_unreachable)
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

    JsonElement? Call(CniRequest request, string service, string op, Action<Utf8JsonWriter> args)
    {
        var line = AgentProtocol.Request(service, op, args);
        using var socket = Connect();
        var deadline = DateTime.UtcNow + RequestTimeout;
        var buffer = new byte[AgentProtocol.MaxResponseBytes];
        int length = 0;
        try
        {
            socket.SendTimeout = (int)RequestTimeout.TotalMilliseconds;
            socket.Send(line);
            while (true)
            {
                int left = (int)(deadline - DateTime.UtcNow).TotalMilliseconds;
                if (left <= 0)
                    throw new SocketException((int)SocketError.TimedOut);
                socket.ReceiveTimeout = left;
                if (length == buffer.Length)
                    throw new CniException(CniErrorCode.IpamPluginFailed, $"ipvlan-cni-dhcp: the agent's answer is longer than {buffer.Length} bytes");
                int n = socket.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
                if (n == 0)
                    throw new CniException(CniErrorCode.IpamPluginFailed, $"ipvlan-cni-dhcp: the agent on {SocketPath} closed the connection without an answer to {op}");
                int newline = Array.IndexOf(buffer, (byte)'\n', length, n);
                length += n;
                if (newline >= 0)
                    return AgentProtocol.ReadResponse(buffer.AsMemory(0, newline));
            }
        }
        catch (SocketException e)
        {
            string why = e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock
                ? $"no answer within {RequestTimeout.TotalSeconds:0} s" : e.Message;
            throw new CniException(CniErrorCode.TryAgainLater, $"ipvlan-cni-dhcp: the agent on {SocketPath} did not answer {op}: {why}");
        }
    }

    /// <summary>Non-blocking, so that an agent with a full backlog cannot hold the plugin past the deadline.</summary>
    Socket Connect()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
        var deadline = DateTime.UtcNow + ConnectTimeout;
        while (true)
        {
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(SocketPath));
                socket.Blocking = true;
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20); // EAGAIN: the agent's backlog is full
            }
            catch (SocketException e)
            {
                socket.Dispose();
                string why = !File.Exists(SocketPath) ? $"there is no socket at {SocketPath}"
                    : e.SocketErrorCode == SocketError.ConnectionRefused ? $"nothing listens on {SocketPath}"
                    : $"connecting to {SocketPath}: {e.Message}";
                _unreachable = true;
                throw new CniException(CniErrorCode.TryAgainLater, $"ipvlan-cni-dhcp: the agent is not running ({why}); start it with `ipvlan-cni agent` (or `systemctl start ipvlan-cni-agent`)");
            }
        }
    }
}
