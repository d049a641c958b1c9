using IpvlanCni.Interop;

namespace IpvlanCni.Netlink;

/// <summary>
/// A real AF_NETLINK socket. It belongs to the network namespace of the thread that opened it, for its whole life.
/// Options: NETLINK_EXT_ACK (error text), NETLINK_CAP_ACK (errors do not echo the request),
/// NETLINK_GET_STRICT_CHK (dumps honour header filters such as ifindex).
/// </summary>
public sealed class NetlinkSocket : INetlinkTransport
{
    readonly FileDescriptor _fd;

    NetlinkSocket(FileDescriptor fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
    }

    public uint PortId { get; }

    public static NetlinkSocket Open(int protocol = Libc.NETLINK_ROUTE)
    {
        var fd = Libc.OpenNetlinkSocket(protocol);
        try
        {
            Libc.SetSocketOption(fd, Libc.SOL_NETLINK, Libc.NETLINK_EXT_ACK, 1);
            Libc.SetSocketOption(fd, Libc.SOL_NETLINK, Libc.NETLINK_CAP_ACK, 1);
            Libc.SetSocketOption(fd, Libc.SOL_NETLINK, Libc.NETLINK_GET_STRICT_CHK, 1);
            // Big dumps arrive in bursts; room for many datagrams avoids ENOBUFS.
            Libc.SetSocketOption(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, 1 << 20);
            return new NetlinkSocket(fd, Libc.GetNetlinkPortId(fd));
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>The cookie of the namespace this socket is bound to (null before Linux 5.14): a namespace's identity for the boot.</summary>
    public ulong? NamespaceCookie => Libc.GetNetworkNamespaceCookie(_fd);

    public void Send(ReadOnlySpan<byte> message) => Libc.SendToKernel(_fd, message);

    public int Receive(Span<byte> buffer, bool peek) =>
        Libc.Receive(_fd, buffer, peek ? Libc.MSG_PEEK | Libc.MSG_TRUNC : 0);

    public void Dispose() => _fd.Dispose();
}
