using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>struct sockaddr_un (sys/un.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct sockaddr_un
{
    public ushort sun_family;
    public fixed byte sun_path[108];
}

/// <summary>struct sockaddr_nl (linux/netlink.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct sockaddr_nl
{
    public ushort nl_family;
    public ushort nl_pad;
    public uint nl_pid;
    public uint nl_groups;
}

public static unsafe partial class Libc
{
    public const int AF_NETLINK = 16;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int NETLINK_ROUTE = 0;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;
    public const int NETLINK_GET_STRICT_CHK = 12;
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int MSG_PEEK = 0x2;
    public const int MSG_TRUNC = 0x20;
    /// <summary>asm-generic/socket.h (Linux 5.14): the u64 cookie of the socket's network namespace.</summary>
    public const int SO_NETNS_COOKIE = 71;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, sockaddr_nl* address, int addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockname(int fd, sockaddr_nl* address, int* addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, void* value, int valueLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendto(int fd, byte* buffer, nuint length, int flags, sockaddr_nl* address, int addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, byte* buffer, nuint length, int flags);

    /// <summary>socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, protocol), bound with nl_pid = 0 (the kernel picks the port).</summary>
    public static FileDescriptor OpenNetlinkSocket(int protocol)
    {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        if (fd < 0)
            throw SystemCallException.FromLast("socket(AF_NETLINK)");
        var handle = new FileDescriptor(fd);
        var address = new sockaddr_nl { nl_family = AF_NETLINK };
        if (bind(fd, &address, sizeof(sockaddr_nl)) != 0)
        {
            var error = SystemCallException.FromLast("bind(AF_NETLINK)");
            handle.Dispose();
            throw error;
        }
        return handle;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, void* value, int* valueLength);

    const int AF_UNIX = 1;
    public const int SOCK_DGRAM = 2;

    /// <summary>
    /// The calling thread's network namespace cookie: unique for the boot and never reused, unlike an nsfs inode
    /// (which a new namespace may get once an old one is gone). Null on kernels before 5.14. Any socket carries it:
    /// a unix datagram socket costs no netlink port.
    /// </summary>
    public static ulong? GetNetworkNamespaceCookie()
    {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return null;
        try
        {
            return Cookie(fd);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>The cookie of the network namespace <paramref name="socketFd"/> belongs to (where it was opened); null before 5.14.</summary>
    public static ulong? GetNetworkNamespaceCookie(FileDescriptor socketFd)
    {
        bool added = false;
        socketFd.DangerousAddRef(ref added);
        try
        {
            return Cookie(socketFd.Value);
        }
        finally { socketFd.DangerousRelease(); }
    }

    static ulong? Cookie(int fd)
    {
        ulong cookie;
        int length = sizeof(ulong);
        return getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &length) == 0 && length == sizeof(ulong) ? cookie : null;
    }

    /// <summary>The nl_pid the kernel assigned at bind.</summary>
    public static uint GetNetlinkPortId(FileDescriptor fd)
    {
        sockaddr_nl address;
        int length = sizeof(sockaddr_nl);
        if (getsockname(fd.Value, &address, &length) != 0)
            throw SystemCallException.FromLast("getsockname");
        return address.nl_pid;
    }

    public static void SetSocketOption(FileDescriptor fd, int level, int name, int value)
    {
        if (setsockopt(fd.Value, level, name, &value, sizeof(int)) != 0)
            throw SystemCallException.FromLast($"setsockopt({level}, {name})");
    }

    /// <summary>Sends one datagram to the kernel (nl_pid 0), retrying EINTR.</summary>
    public static void SendToKernel(FileDescriptor fd, ReadOnlySpan<byte> message)
    {
        var kernel = new sockaddr_nl { nl_family = AF_NETLINK };
        fixed (byte* p = message)
        {
            while (true)
            {
                nint sent = sendto(fd.Value, p, (nuint)message.Length, 0, &kernel, sizeof(sockaddr_nl));
                if (sent >= 0)
                    return;
                if (ErrnoInfo.Last != Errno.EINTR)
                    throw SystemCallException.FromLast("sendto(netlink)");
            }
        }
    }

    /// <summary>recv(2) retrying EINTR; with MSG_TRUNC the result is the datagram's real length.</summary>
    public static int Receive(FileDescriptor fd, Span<byte> buffer, int flags)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint received = recv(fd.Value, p, (nuint)buffer.Length, flags);
                if (received >= 0)
                    return (int)received;
                if (ErrnoInfo.Last != Errno.EINTR)
                    throw SystemCallException.FromLast("recv(netlink)");
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int connect(int fd, sockaddr_un* address, int addressLength);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(int fd, byte* buffer, nuint length, int flags);

    const int SOCK_STREAM = 1, MSG_NOSIGNAL = 0x4000;
    /// <summary>sun_path holds this many bytes and a terminating NUL.</summary>
    public const int MaxUnixSocketPathBytes = 107;

    /// <summary>
    /// A non-blocking AF_UNIX stream socket connected to <paramref name="path"/>, or null with connect's errno
    /// (EAGAIN: the listener's backlog is full; ENOENT: no socket there; ECONNREFUSED: nobody listens).
    /// </summary>
    public static FileDescriptor? TryConnectUnixStream(string path, out Errno failure)
    {
        var address = new sockaddr_un { sun_family = (ushort)AF_UNIX };
        int length = System.Text.Encoding.UTF8.GetBytes(path, new Span<byte>(address.sun_path, MaxUnixSocketPathBytes));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | O_NONBLOCK, 0);
        if (fd < 0)
            throw SystemCallException.FromLast("socket(AF_UNIX)");
        var socketFd = new FileDescriptor(fd);
        while (connect(fd, &address, sizeof(ushort) + length + 1) != 0)
        {
            failure = ErrnoInfo.Last;
            if (failure == Errno.EINTR)
                continue;
            socketFd.Dispose();
            return null;
        }
        failure = Errno.None;
        return socketFd;
    }

    /// <summary>send(2) without waiting and without SIGPIPE: bytes sent, -1 when the socket's buffer is full now.</summary>
    public static int SendNonBlocking(FileDescriptor fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
            while (true)
                if (NonBlocking(send(fd.Value, p, (nuint)buffer.Length, MSG_DONTWAIT | MSG_NOSIGNAL), "send") is { } n)
                    return n;
    }
}
