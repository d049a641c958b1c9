using System.Text;
using System.Text.Json;
using IpvlanCni.Agent;
using IpvlanCni.Cni;
using IpvlanCni.Interop;

namespace IpvlanCni.Ipam;

/// <summary>
/// One request to the node agent: connect (non-blocking, bounded), one line out, one line back, all under a
/// deadline, on the calling thread (poll on our own socket: no socket engine, no thread pool). An absent agent is a
/// clear code 11 that says how to start it.
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
        long deadline = Environment.TickCount64 + (long)requestTimeout.TotalMilliseconds;
        var buffer = new byte[AgentProtocol.MaxResponseBytes];
        try
        {
            for (int sent = 0; sent < line.Length;)
            {
                int n = Libc.SendNonBlocking(socket, line.AsSpan(sent));
                if (n < 0)
                    Wait(socket, Libc.POLLOUT, deadline, op);
                else
                    sent += n;
            }
            int length = 0;
            while (true)
            {
                if (length == buffer.Length)
                    throw new CniException(CniErrorCode.IpamPluginFailed, $"{who}: the agent's answer is longer than {buffer.Length} bytes");
                int n = Libc.ReadNonBlocking(socket.Value, buffer.AsSpan(length));
                if (n < 0)
                {
                    Wait(socket, Libc.POLLIN, deadline, op);
                    continue;
                }
                if (n == 0)
                    throw new CniException(CniErrorCode.IpamPluginFailed, $"{who}: the agent on {SocketPath} closed the connection without an answer to {op}");
                int newline = Array.IndexOf(buffer, (byte)'\n', length, n);
                length += n;
                if (newline >= 0)
                    return AgentProtocol.ReadResponse(buffer.AsMemory(0, newline));
            }
        }
        catch (SystemCallException e)
        {
            throw new CniException(CniErrorCode.TryAgainLater, $"{who}: the agent on {SocketPath} did not answer {op}: {e.Message}");
        }
    }

    void Wait(FileDescriptor socket, short events, long deadline, string op)
    {
        Span<pollfd> fds = [new pollfd { fd = socket.Value, events = events }];
        long left = deadline - Environment.TickCount64;
        if (left <= 0 || Libc.Poll(fds, (int)left) == 0 && Environment.TickCount64 >= deadline)
            throw new CniException(CniErrorCode.TryAgainLater,
                $"{who}: the agent on {SocketPath} did not answer {op}: no answer within {requestTimeout.TotalSeconds:0} s");
    }

    /// <summary>Non-blocking, so that an agent with a full backlog cannot hold the plugin past the deadline.</summary>
    FileDescriptor Connect()
    {
        if (Encoding.UTF8.GetByteCount(SocketPath) > Libc.MaxUnixSocketPathBytes)
            throw new CniException(CniErrorCode.InvalidNetworkConfig,
                $"ipam.agentSocket: \"{CniNames.Truncate(SocketPath)}\" is longer than a unix socket path can be ({Libc.MaxUnixSocketPathBytes} bytes)");
        long deadline = Environment.TickCount64 + (long)ConnectTimeout.TotalMilliseconds;
        while (true)
        {
            if (Libc.TryConnectUnixStream(SocketPath, out var failure) is { } socket)
                return socket;
            if (failure == Errno.EAGAIN && Environment.TickCount64 < deadline)
            {
                Thread.Sleep(20); // the agent's backlog is full
                continue;
            }
            string why = failure switch
            {
                Errno.ENOENT => $"there is no socket at {SocketPath}",
                Errno.ECONNREFUSED => $"nothing listens on {SocketPath}",
                _ => $"connecting to {SocketPath}: {ErrnoInfo.Describe((int)failure)}",
            };
            Unreachable = true;
            throw new CniException(CniErrorCode.TryAgainLater, $"{who}: the agent is not running ({why}); start it with `ipvlan-cni agent` (or `systemctl start ipvlan-cni-agent`)");
        }
    }
}
