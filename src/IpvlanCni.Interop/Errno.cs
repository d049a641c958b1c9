using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>The errno values we test for by name (asm-generic/errno-base.h, errno.h).</summary>
public enum Errno
{
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENOSPC = 28,
    EROFS = 30,
    EPIPE = 32,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENOBUFS = 105,
    EOPNOTSUPP = 95,
    EADDRNOTAVAIL = 99,
    ENETUNREACH = 101,
    ECONNREFUSED = 111,
    EHOSTUNREACH = 113,
}

public static class ErrnoInfo
{
    /// <summary>errno of the last LibraryImport call made with SetLastError = true on this thread.</summary>
    public static Errno Last => (Errno)Marshal.GetLastPInvokeError();

    /// <summary>"EEXIST (File exists)": the symbolic name when we know it, and strerror's text.</summary>
    public static string Describe(int errno)
    {
        string text = Marshal.GetPInvokeErrorMessage(errno);
        return Enum.IsDefined((Errno)errno) ? $"{(Errno)errno} ({text})" : $"errno {errno} ({text})";
    }
}

/// <summary>A failed system call: which one, and its errno.</summary>
public sealed class SystemCallException(string call, Errno errno)
    : Exception($"{call}: {ErrnoInfo.Describe((int)errno)}")
{
    public string Call { get; } = call;
    public Errno Errno { get; } = errno;

    /// <summary>Throws for the calling thread's last errno.</summary>
    public static SystemCallException FromLast(string call) => new(call, ErrnoInfo.Last);
}
