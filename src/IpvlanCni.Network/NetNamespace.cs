namespace IpvlanCni.Network;

/// <summary>
/// An open network namespace (an fd on an nsfs file). Identity is (device, inode).
/// Code runs inside one on a dedicated OS thread that enters it with setns and then ends: never a thread-pool
/// thread, never a switch back.
/// </summary>
public sealed class NetNamespace : IDisposable
{
    public ulong Device => throw new NotImplementedException();
    public ulong Inode => throw new NotImplementedException();
    public string Path => throw new NotImplementedException();

    /// <summary>Opens a namespace file; throws <see cref="NamespaceException"/> when it is not an nsfs mount.</summary>
    public static NetNamespace Open(string path) => throw new NotImplementedException();

    /// <summary>The calling thread's namespace (/proc/thread-self/ns/net).</summary>
    public static NetNamespace OpenCurrent() => throw new NotImplementedException();

    /// <summary>Creates /run/netns/<paramref name="name"/> (a new namespace bind-mounted there), like "ip netns add".</summary>
    public static NetNamespace CreateNamed(string name) => throw new NotImplementedException();

    /// <summary>Unmounts and removes /run/netns/<paramref name="name"/>; no error when it is absent.</summary>
    public static void DeleteNamed(string name) => throw new NotImplementedException();

    public bool IsSame(NetNamespace other) => throw new NotImplementedException();

    /// <summary>Runs <paramref name="action"/> on a new OS thread inside this namespace; exceptions propagate.</summary>
    public T Run<T>(Func<T> action) => throw new NotImplementedException();
    public void Run(Action action) => throw new NotImplementedException();

    /// <summary>Writes /proc/sys/&lt;key with dots as slashes&gt; as seen inside this namespace.</summary>
    public void WriteSysctl(string key, string value) => throw new NotImplementedException();
    public string ReadSysctl(string key) => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}

public sealed class NamespaceException(string message, int errno = 0) : Exception(message)
{
    public int Errno { get; } = errno;
}
