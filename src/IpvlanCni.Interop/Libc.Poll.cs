using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>struct pollfd (poll.h).</summary>
[StructLayout(LayoutKind.Sequential)]
#pragma warning disable CS8981 // the kernel's name, as every interop struct here
public struct pollfd
#pragma warning restore CS8981
{
    public int fd;
    public short events;
    public short revents;
}

public static unsafe partial class Libc
{
    public const short POLLIN = 0x1;
    public const short POLLOUT = 0x4;
    public const short POLLERR = 0x8;
    public const short POLLHUP = 0x10;
    const int F_GETFL = 3, F_SETFL = 4;
    /// <summary>asm-generic/unistd.h and arch/x86/entry/syscalls: pidfd_open is 434 on every architecture (Linux 5.3).</summary>
    const long SYS_pidfd_open = 434;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(pollfd* fds, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int pid, uint flags);

    /// <summary>poll(2); EINTR counts as "nothing ready yet" (the caller's loop checks its deadline).</summary>
    public static int Poll(Span<pollfd> fds, int timeoutMilliseconds)
    {
        fixed (pollfd* p = fds)
        {
            int n = poll(p, (nuint)fds.Length, timeoutMilliseconds);
            if (n >= 0)
                return n;
            return ErrnoInfo.Last == Errno.EINTR ? 0 : throw SystemCallException.FromLast("poll");
        }
    }

    /// <summary>Sets O_NONBLOCK on a descriptor (a pipe end), so a read or write never waits.</summary>
    public static void SetNonBlocking(int fd)
    {
        int flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
            throw SystemCallException.FromLast("fcntl(O_NONBLOCK)");
    }

    /// <summary>pidfd_open(2): a descriptor that polls readable when the process exits; null before Linux 5.3 (or when it is gone).</summary>
    public static FileDescriptor? TryOpenProcess(int pid)
    {
        long fd = syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? null : new FileDescriptor((int)fd);
    }

    /// <summary>read(2) of a non-blocking descriptor: bytes read, 0 at end of file, -1 when nothing is there now.</summary>
    public static int ReadNonBlocking(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
            while (true)
                if (NonBlocking(read(fd, p, (nuint)buffer.Length), "read") is { } n)
                    return n;
    }

    /// <summary>write(2) of a non-blocking descriptor: bytes written, -1 when the pipe is full now.</summary>
    public static int WriteNonBlocking(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
            while (true)
                if (NonBlocking(write(fd, p, (nuint)buffer.Length), "write") is { } n)
                    return n;
    }

    /// <summary>
    /// The answer of one non-blocking read, write or send: its byte count, -1 for EAGAIN (nothing can move now), null
    /// for EINTR (call again); any other errno is thrown.
    /// </summary>
    static int? NonBlocking(nint result, string call)
    {
        if (result >= 0)
            return (int)result;
        var errno = ErrnoInfo.Last;
        return errno == Errno.EAGAIN ? -1 : errno == Errno.EINTR ? null : throw new SystemCallException(call, errno);
    }
}
