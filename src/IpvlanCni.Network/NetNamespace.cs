using System.Runtime.ExceptionServices;
using IpvlanCni.Interop;

namespace IpvlanCni.Network;

/// <summary>
/// An open network namespace (an fd on an nsfs file). Identity is (device, inode).
/// Code runs inside one on a dedicated OS thread that enters it with setns and then ends: never a thread-pool
/// thread, never a switch back.
/// </summary>
public sealed class NetNamespace : IDisposable
{
    /// <summary>Where "ip netns" keeps its bind mounts; we share the convention.</summary>
    public const string NamedDirectory = "/run/netns";

    readonly FileDescriptor _fd;

    NetNamespace(FileDescriptor fd, string path)
    {
        _fd = fd;
        Path = path;
        var status = Libc.Stat(fd);
        (Device, Inode) = (status.Device, status.Inode);
    }

    public ulong Device { get; }
    public ulong Inode { get; }
    public string Path { get; }

    /// <summary>The fd number, for IFLA_NET_NS_FD; valid while this object is not disposed.</summary>
    internal int FileDescriptorNumber
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
            return _fd.Value;
        }
    }

    /// <summary>
    /// Opens a namespace file; throws <see cref="NamespaceException"/> when it is not an nsfs mount. The path is the
    /// request's: it is first opened O_PATH (which never blocks, not even on a FIFO, and reads nothing) and checked
    /// with fstatfs; only a namespace file is then reopened for use (setns and IFLA_NET_NS_FD refuse O_PATH fds).
    /// </summary>
    public static NetNamespace Open(string path)
    {
        FileDescriptor probe;
        try
        {
            probe = Libc.Open(path, Libc.O_PATH | Libc.O_NONBLOCK);
        }
        catch (SystemCallException e)
        {
            throw new NamespaceException($"\"{Truncate(path)}\" cannot be opened: {e.Message}", (int)e.Errno);
        }
        FileDescriptor fd;
        using (probe)
        {
            try
            {
                // A plain file (say, a /run/netns entry whose bind mount is gone) must not pass for a namespace.
                long type = Libc.GetFileSystemType(probe);
                if (type != Libc.NSFS_MAGIC)
                    throw new NamespaceException($"\"{Truncate(path)}\" is not a namespace file (file system 0x{type:x}, not nsfs)", (int)Errno.EINVAL);
                fd = Libc.Open($"/proc/self/fd/{probe.Value}", Libc.O_RDONLY | Libc.O_NONBLOCK);
            }
            catch (SystemCallException e)
            {
                throw new NamespaceException($"\"{Truncate(path)}\": {e.Message}", (int)e.Errno);
            }
        }
        try
        {
            // /proc/self/ns/mnt is nsfs too: only a network namespace will do for setns(CLONE_NEWNET).
            if (Libc.GetNamespaceType(fd) != Libc.CLONE_NEWNET)
                throw new NamespaceException($"{path} is a namespace, but not a network namespace", (int)Errno.EINVAL);
            return new NetNamespace(fd, path);
        }
        catch (SystemCallException e)
        {
            fd.Dispose();
            throw new NamespaceException($"{path}: {e.Message}", (int)e.Errno);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>The calling thread's namespace (/proc/thread-self/ns/net).</summary>
    public static NetNamespace OpenCurrent() => Open("/proc/thread-self/ns/net");

    /// <summary>Creates /run/netns/<paramref name="name"/> (a new namespace bind-mounted there), like "ip netns add".</summary>
    public static NetNamespace CreateNamed(string name)
    {
        string path = NamedPath(name);
        Directory.CreateDirectory(NamedDirectory);
        try
        {
            // The mount point: an empty file; CreateNew fails when the name is taken.
            using (new FileStream(path, FileMode.CreateNew, FileAccess.Write)) { }
        }
        catch (IOException e)
        {
            throw new NamespaceException($"create namespace {name}: {e.Message}", (int)Errno.EEXIST);
        }
        try
        {
            // unshare gives only this new thread the namespace; the mount outlives the thread.
            RunOnNewThread(() =>
            {
                Libc.UnshareNetworkNamespace();
                Libc.BindMount("/proc/thread-self/ns/net", path);
                return 0;
            });
            return Open(path);
        }
        catch (SystemCallException e)
        {
            File.Delete(path);
            throw new NamespaceException($"create namespace {name}: {e.Message}", (int)e.Errno);
        }
        catch
        {
            Libc.DetachMount(path);
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Unmounts and removes /run/netns/<paramref name="name"/>; no error when it is absent.</summary>
    public static void DeleteNamed(string name)
    {
        string path = NamedPath(name);
        var error = Libc.DetachMount(path);
        // ENOENT: no such file; EINVAL: a file that is not a mount point (already unmounted).
        if (error is not (Errno.None or Errno.ENOENT or Errno.EINVAL))
            throw new NamespaceException($"unmount {path}: {ErrnoInfo.Describe((int)error)}", (int)error);
        try
        {
            File.Delete(path);
        }
        catch (IOException e)
        {
            throw new NamespaceException($"remove {path}: {e.Message}");
        }
    }

    public bool IsSame(NetNamespace other) => Device == other.Device && Inode == other.Inode;

    /// <summary>Runs <paramref name="action"/> on a new OS thread inside this namespace; exceptions propagate.</summary>
    public T Run<T>(Func<T> action)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        return RunOnNewThread(() =>
        {
            try
            {
                Libc.SetNetworkNamespace(_fd);
            }
            catch (SystemCallException e)
            {
                throw new NamespaceException($"enter namespace {Path}: {e.Message}", (int)e.Errno);
            }
            return action();
        });
    }

    public void Run(Action action) => Run(() => { action(); return 0; });

    /// <summary>
    /// Runs <paramref name="action"/> inside each namespace in turn on one new OS thread that ends afterwards: one
    /// thread start instead of one per namespace (starting threads is the expensive part). A namespace that cannot
    /// be entered gets default and no call.
    /// </summary>
    public static List<T?> RunInEach<T>(IReadOnlyList<NetNamespace> namespaces, Func<NetNamespace, T> action) => RunOnNewThread(() =>
    {
        var results = new List<T?>(namespaces.Count);
        foreach (var ns in namespaces)
        {
            try
            {
                ObjectDisposedException.ThrowIf(ns._fd.IsClosed, ns);
                Libc.SetNetworkNamespace(ns._fd);
            }
            catch (SystemCallException)
            {
                results.Add(default);
                continue;
            }
            results.Add(action(ns));
        }
        return results;
    });

    /// <summary>Writes /proc/sys/&lt;key with dots as slashes&gt; as seen inside this namespace.</summary>
    public void WriteSysctl(string key, string value) => Run(() => File.WriteAllText(SysctlPath(key), value));

    /// <summary>
    /// Writes several sysctls inside this namespace on one thread (starting the thread is the expensive part), each
    /// on its own: returns the keys that could not be written (absent, say IPv6 disabled, or read-only).
    /// </summary>
    public IReadOnlyList<string> TryWriteSysctls(params (string Key, string Value)[] settings) => Run(() =>
    {
        var failed = new List<string>();
        foreach (var (key, value) in settings)
        {
            try
            {
                File.WriteAllText(SysctlPath(key), value);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                failed.Add(key);
            }
        }
        return failed;
    });

    public string ReadSysctl(string key) => Run(() => File.ReadAllText(SysctlPath(key)).TrimEnd('\n'));

    public void Dispose() => _fd.Dispose();

    public override string ToString() => $"{Path} (dev {Device}, inode {Inode})";

    /// <summary>
    /// Runs on a fresh OS thread that ends afterwards, so whatever the action did to the thread (setns, unshare)
    /// dies with it. Exceptions come back to the caller with their original stack.
    /// </summary>
    static T RunOnNewThread<T>(Func<T> action)
    {
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = action();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    static string Truncate(string value) => value.Length <= 256 ? value : string.Concat(value.AsSpan(0, 256), "...");

    static string NamedPath(string name)
    {
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.Contains('/') || name.Contains('\0'))
            throw new ArgumentException($"'{name}' is not a valid namespace name", nameof(name));
        return $"{NamedDirectory}/{name}";
    }

    // "net.ipv4.ip_forward" -> /proc/sys/net/ipv4/ip_forward; a key with slashes is taken as the path already
    // (interface names can contain dots: "net/ipv4/conf/eth0.100/forwarding").
    static string SysctlPath(string key) => "/proc/sys/" + (key.Contains('/') ? key.TrimStart('/') : key.Replace('.', '/'));
}

public sealed class NamespaceException(string message, int errno = 0) : Exception(message)
{
    public int Errno { get; } = errno;
}
