using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>struct sockaddr_ll (linux/if_packet.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct sockaddr_ll
{
    public ushort sll_family;
    /// <summary>Network byte order.</summary>
    public ushort sll_protocol;
    public int sll_ifindex;
    public ushort sll_hatype;
    public byte sll_pkttype;
    public byte sll_halen;
    public fixed byte sll_addr[8];
}

public static unsafe partial class Libc
{
    public const int AF_PACKET = 17;
    /// <summary>linux/if_packet.h: a frame this host sent (a packet socket sees its own transmissions).</summary>
    public const byte PACKET_OUTGOING = 4;
    const int MSG_DONTWAIT = 0x40;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, sockaddr_ll* address, int addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendto(int fd, byte* buffer, nuint length, int flags, sockaddr_ll* address, int addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvfrom(int fd, byte* buffer, nuint length, int flags, sockaddr_ll* address, int* addressLength);

    /// <summary>
    /// socket(AF_PACKET, SOCK_DGRAM|SOCK_CLOEXEC, protocol) bound to one link: the kernel adds and strips the link
    /// header, and only frames of that EtherType on that link arrive (opened in the calling thread's namespace).
    /// </summary>
    public static FileDescriptor OpenPacketSocket(ushort etherType, int ifindex)
    {
        ushort protocol = BinaryPrimitives.ReverseEndianness(etherType);
        int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, protocol);
        if (fd < 0)
            throw SystemCallException.FromLast("socket(AF_PACKET)");
        var handle = new FileDescriptor(fd);
        var address = new sockaddr_ll { sll_family = AF_PACKET, sll_protocol = protocol, sll_ifindex = ifindex };
        if (bind(fd, &address, sizeof(sockaddr_ll)) != 0)
        {
            var error = SystemCallException.FromLast("bind(AF_PACKET)");
            handle.Dispose();
            throw error;
        }
        return handle;
    }

    /// <summary>Sends one frame's payload to a link-layer address (6 bytes) on the socket's link, retrying EINTR.</summary>
    public static void SendPacket(FileDescriptor fd, ReadOnlySpan<byte> payload, ushort etherType, int ifindex, ReadOnlySpan<byte> destination)
    {
        var address = new sockaddr_ll
        {
            sll_family = AF_PACKET,
            sll_protocol = BinaryPrimitives.ReverseEndianness(etherType),
            sll_ifindex = ifindex,
            sll_halen = (byte)destination.Length,
        };
        destination.CopyTo(new Span<byte>(address.sll_addr, 8));
        fixed (byte* p = payload)
        {
            while (true)
            {
                if (sendto(fd.Value, p, (nuint)payload.Length, 0, &address, sizeof(sockaddr_ll)) >= 0)
                    return;
                if (ErrnoInfo.Last != Errno.EINTR)
                    throw SystemCallException.FromLast("sendto(AF_PACKET)");
            }
        }
    }

    /// <summary>
    /// Waits at most <paramref name="timeoutMs"/> for any of the sockets to have a frame: the index of one that
    /// does, or -1 when the time ran out (EINTR counts as a wake-up; the caller re-checks its deadline).
    /// </summary>
    public static int WaitReadable(ReadOnlySpan<FileDescriptor> sockets, int timeoutMs)
    {
        Span<pollfd> fds = stackalloc pollfd[sockets.Length];
        for (int i = 0; i < sockets.Length; i++)
            fds[i] = new pollfd { fd = sockets[i].Value, events = POLLIN };
        Poll(fds, timeoutMs);
        for (int i = 0; i < fds.Length; i++)
            if ((fds[i].revents & POLLIN) != 0)
                return i;
        return -1;
    }

    /// <summary>One frame's payload without waiting (-1 when none is queued) and its packet type (PACKET_HOST, PACKET_OUTGOING...).</summary>
    public static int ReceivePacket(FileDescriptor fd, Span<byte> buffer, out byte packetType)
    {
        sockaddr_ll from;
        int length = sizeof(sockaddr_ll);
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint received = recvfrom(fd.Value, p, (nuint)buffer.Length, MSG_DONTWAIT, &from, &length);
                if (received >= 0)
                {
                    packetType = from.sll_pkttype;
                    return (int)received;
                }
                var errno = ErrnoInfo.Last;
                if (errno == Errno.EAGAIN)
                {
                    packetType = 0;
                    return -1;
                }
                if (errno != Errno.EINTR)
                    throw SystemCallException.FromLast("recvfrom(AF_PACKET)");
            }
        }
    }
}
