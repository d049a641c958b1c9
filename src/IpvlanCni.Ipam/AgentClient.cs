using System.Net.Sockets;
using System.Text.Json;
using IpvlanCni.Agent;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>
/// One request to the node agent: connect (non-blocking, bounded), one line out, one line back, all under a
/// deadline. An absent agent is a clear code 11 that says how to start it.
/// </summary>
public sealed class AgentClient(string socketPath, string who, TimeSpan requestTimeout)
{
    static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    public string SocketPath { get; } = socketPath;

    /// <summary>The last call found no agent listening (its request never reached one).</summary>
    public bool Unreachable { get; private set; }

    public JsonElement? Call(string service, string op, Action<Utf8JsonWriter> args)
    {
        var line = AgentProtocol.Request(service, op, args);
        using var socket = Connect();
        var deadline = DateTime.UtcNow + requestTimeout;
        var buffer = new byte[AgentProtocol.MaxResponseBytes];
        int length = 0;
        try
        {
            socket.SendTimeout = (int)requestTimeout.TotalMilliseconds;
            socket.Send(line);
            while (true)
            {
                int left = (int)(deadline - DateTime.UtcNow).TotalMilliseconds;
                if (left <= 0)
                    throw new SocketException((int)SocketError.TimedOut);
                socket.ReceiveTimeout = left;
                if (length == buffer.Length)
                    throw new CniException(CniErrorCode.IpamPluginFailed, $"{who}: the agent's answer is longer than {buffer.Length} bytes");
                int n = socket.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
                if (n == 0)
                    throw new CniException(CniErrorCode.IpamPluginFailed, $"{who}: the agent on {SocketPath} closed the connection without an answer to {op}");
                int newline = Array.IndexOf(buffer, (byte)'\n', length, n);
                length += n;
                if (newline >= 0)
                    return AgentProtocol.ReadResponse(buffer.AsMemory(0, newline));
            }
        }
        catch (SocketException e)
        {
            string why = e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock
                ? $"no answer within {requestTimeout.TotalSeconds:0} s" : e.Message;
            throw new CniException(CniErrorCode.TryAgainLater, $"{who}: the agent on {SocketPath} did not answer {op}: {why}");
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
                Unreachable = true;
                throw new CniException(CniErrorCode.TryAgainLater, $"{who}: the agent is not running ({why}); start it with `ipvlan-cni agent` (or `systemctl start ipvlan-cni-agent`)");
            }
        }
    }
}
