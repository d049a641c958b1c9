using IpvlanCni.Interop;

namespace IpvlanCni.Netlink;

/// <summary>The kernel refused a request: errno, the operation, and the extended-ack text when the kernel gave one.</summary>
public class NetlinkException(string operation, int errno, string? extendedAck)
    : Exception($"{operation}: {ErrnoInfo.Describe(errno)}{(string.IsNullOrEmpty(extendedAck) ? "" : $" ({extendedAck})")}")
{
    public string Operation { get; } = operation;
    /// <summary>Positive errno (EEXIST = 17, ENODEV = 19, ...).</summary>
    public int Errno { get; } = errno;
    public string? ExtendedAck { get; } = extendedAck;

    /// <summary>The errno as the typed enum (its symbolic name when we know it).</summary>
    public Errno Code => (Errno)Errno;

    public bool IsNotFound => IsNotFoundErrno(Errno);

    /// <summary>The answers that mean "no such object": ENOENT, ESRCH, ENODEV.</summary>
    public static bool IsNotFoundErrno(int errno) => errno is 2 /* ENOENT */ or 3 /* ESRCH */ or 19 /* ENODEV */;
    public bool IsExists => Errno == 17; /* EEXIST */
}

/// <summary>Malformed netlink bytes: the only exception the decoders throw.</summary>
public sealed class NetlinkDecodeException(string message) : Exception(message);
