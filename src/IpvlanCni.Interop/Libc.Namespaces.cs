using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

public static unsafe partial class Libc
{
    public const int CLONE_NEWNET = 0x40000000;
    public const ulong MS_BIND = 0x1000;
    public const int MNT_DETACH = 2;
    /// <summary>include/uapi/linux/nsfs.h: _IO(NSIO 0xb7, 0x3), the CLONE_NEW* type of a namespace fd (Linux 4.11).</summary>
    public const ulong NS_GET_NSTYPE = 0xb703;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string? source, string target, string? fileSystemType, ulong flags, nint data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    /// <summary>Moves the calling OS thread into the namespace of <paramref name="fd"/>.</summary>
    public static void SetNetworkNamespace(FileDescriptor fd)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            if (setns(fd.Value, CLONE_NEWNET) != 0)
                throw SystemCallException.FromLast("setns");
        }
        finally { fd.DangerousRelease(); }
    }

    /// <summary>The namespace type (CLONE_NEWNET, CLONE_NEWNS, ...) of an nsfs fd.</summary>
    public static int GetNamespaceType(FileDescriptor fd)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            int type = ioctl(fd.Value, NS_GET_NSTYPE);
            return type >= 0 ? type : throw SystemCallException.FromLast("ioctl(NS_GET_NSTYPE)");
        }
        finally { fd.DangerousRelease(); }
    }

    /// <summary>Gives the calling OS thread a new, empty network namespace.</summary>
    public static void UnshareNetworkNamespace()
    {
        if (unshare(CLONE_NEWNET) != 0)
            throw SystemCallException.FromLast("unshare");
    }

    public static void BindMount(string source, string target)
    {
        if (mount(source, target, "none", MS_BIND, 0) != 0)
            throw SystemCallException.FromLast($"mount --bind {source} {target}");
    }

    /// <summary>umount2(MNT_DETACH); returns the errno (0 on success) so callers decide what "absent" means.</summary>
    public static Errno DetachMount(string target) =>
        umount2(target, MNT_DETACH) == 0 ? Errno.None : ErrnoInfo.Last;
}
