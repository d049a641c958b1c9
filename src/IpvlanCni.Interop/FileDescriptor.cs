using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

/// <summary>An owned Linux file descriptor; closed exactly once by the SafeHandle machinery.</summary>
public sealed class FileDescriptor : SafeHandle
{
    public FileDescriptor() : base(invalidHandleValue: -1, ownsHandle: true) { }

    public FileDescriptor(int fd) : this() => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    /// <summary>The raw number, for syscalls that take an fd as an integer (setns, IFLA_NET_NS_FD).</summary>
    public int Value => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
