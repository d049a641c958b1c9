using System.Net;
using System.Net.Sockets;
using System.Text;
using IpvlanCni.Network;

namespace IpvlanCni.Dhcp;

/// <summary>Moves DHCP messages; the state machine never sees a socket.</summary>
public interface IDhcpTransport : IDisposable
{
    void Send(DhcpSend send);

    /// <summary>The next packet's bytes, or null when <paramref name="timeout"/> passes first.</summary>
    byte[]? Receive(TimeSpan timeout);
}

/// <summary>
/// A UDP socket on port 68 created inside the pod's namespace (a socket stays in the namespace it was made in, so it
/// is used from any thread afterwards), bound to the pod's interface with SO_BINDTODEVICE and allowed to broadcast.
/// This works on an ipvlan slave that has no address yet: the kernel routes the limited broadcast out of the bound
/// device with source 0.0.0.0, and the server's broadcast replies (we set the BROADCAST flag) reach every slave and
/// are delivered to the socket bound to 0.0.0.0:68. No raw socket is needed, because no reply is ever unicast to an
/// address the slave does not hold yet.
/// </summary>
public sealed class UdpDhcpTransport : IDhcpTransport
{
    const int SOL_SOCKET = 1;
    const int SO_BINDTODEVICE = 25;
    readonly Socket _socket;
    readonly byte[] _buffer = new byte[1500];

    UdpDhcpTransport(Socket socket) => _socket = socket;

    public static UdpDhcpTransport Open(NetNamespace pod, string ifName) => new(pod.Run(() =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.EnableBroadcast = true;
            socket.SetRawSocketOption(SOL_SOCKET, SO_BINDTODEVICE, Encoding.ASCII.GetBytes(ifName + "\0"));
            socket.Bind(new IPEndPoint(IPAddress.Any, DhcpMessage.ClientPort));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }));

    public void Send(DhcpSend send) =>
        _socket.SendTo(send.Message.Encode(), new IPEndPoint(send.Destination, DhcpMessage.ServerPort));

    public byte[]? Receive(TimeSpan timeout)
    {
        long micros = Math.Max(0, (long)timeout.TotalMicroseconds);
        if (!_socket.Poll(micros > int.MaxValue ? int.MaxValue : (int)micros, SelectMode.SelectRead))
            return null;
        int n = _socket.Receive(_buffer);
        return _buffer.AsSpan(0, n).ToArray();
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>Runs a <see cref="DhcpClient"/> over a transport against a clock: the only place where time passes.</summary>
public static class DhcpExchange
{
    /// <summary>
    /// Sends <paramref name="first"/> (if any), then answers, retransmits and waits until the client leaves its
    /// waiting states (for BOUND, LOST or INIT) or <paramref name="until"/> passes. Malformed and foreign packets are ignored.
    /// </summary>
    public static void Run(DhcpClient client, IDhcpTransport transport, TimeProvider clock, DhcpSend? first, DateTimeOffset until)
    {
        var waitingIn = client.State;
        if (first is not null)
            transport.Send(first);
        while (true)
        {
            if (client.State is DhcpState.Bound or DhcpState.Lost or DhcpState.Released or DhcpState.Init)
                return;
            var now = clock.GetUtcNow();
            if (now >= until)
                return;
            if (now >= client.WakeAt)
            {
                // A state that only a timer leaves (RENEWING's retry): the caller schedules that, not us.
                if (client.State is DhcpState.Renewing or DhcpState.Rebinding && client.State == waitingIn)
                    return;
                if (client.OnTimer(now) is { } retry)
                    transport.Send(retry);
                waitingIn = client.State;
                continue;
            }
            var wake = client.WakeAt < until ? client.WakeAt : until;
            var packet = transport.Receive(wake - now);
            if (packet is null)
                continue;
            DhcpSend? answer;
            try
            {
                answer = client.OnReceive(DhcpMessage.Decode(packet), clock.GetUtcNow());
            }
            catch (DhcpFormatException)
            {
                continue; // a broken packet, or an ACK that grants nothing usable: as if lost
            }
            if (answer is not null)
                transport.Send(answer);
        }
    }
}
