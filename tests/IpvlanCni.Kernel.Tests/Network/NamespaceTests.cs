using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Network;

public sealed class NamespaceTests : KernelTest
{
    [Fact]
    public void Identity_is_device_and_inode()
    {
        string name = UniqueName("ns");
        using var created = NetNamespace.CreateNamed(name);
        try
        {
            using var again = NetNamespace.Open($"/run/netns/{name}");
            using var current = NetNamespace.OpenCurrent();
            Assert.True(created.IsSame(again));
            Assert.False(created.IsSame(current));
            // Inside, the thread's own namespace is the created one.
            Assert.True(created.Run(() => { using var inside = NetNamespace.OpenCurrent(); return inside.IsSame(created); }));
            // And the caller's thread was never moved.
            using var after = NetNamespace.OpenCurrent();
            Assert.True(after.IsSame(current));
        }
        finally
        {
            NetNamespace.DeleteNamed(name);
        }
        Assert.False(File.Exists($"/run/netns/{name}"));
        NetNamespace.DeleteNamed(name); // absent: no error
    }

    [Fact]
    public void Duplicate_name_and_non_nsfs_files_are_refused()
    {
        using var node = new TestNode();
        Assert.Throws<NamespaceException>(() => NetNamespace.CreateNamed(node.Name));
        string plain = $"/run/netns/{UniqueName("plain")}";
        File.WriteAllText(plain, "");
        try
        {
            var e = Assert.Throws<NamespaceException>(() => NetNamespace.Open(plain));
            Assert.Contains("nsfs", e.Message);
            NetNamespace.DeleteNamed(Path.GetFileName(plain)); // a file without a mount: just removed
            Assert.False(File.Exists(plain));
        }
        finally
        {
            File.Delete(plain);
        }
        Assert.Throws<NamespaceException>(() => NetNamespace.Open("/run/netns/does-not-exist"));
    }

    [Fact]
    public void Run_rethrows_on_the_caller_and_each_run_gets_a_fresh_thread()
    {
        using var node = new TestNode();
        var e = Assert.Throws<InvalidOperationException>(() => node.Namespace.Run(() => throw new InvalidOperationException("inside")));
        Assert.Equal("inside", e.Message);
        int first = node.Namespace.Run(() => Environment.CurrentManagedThreadId);
        int second = node.Namespace.Run(() => Environment.CurrentManagedThreadId);
        Assert.NotEqual(Environment.CurrentManagedThreadId, first);
        Assert.NotEqual(first, second);

        var disposed = NetNamespace.Open(node.Namespace.Path);
        disposed.Dispose();
        bool ran = false;
        Assert.ThrowsAny<ObjectDisposedException>(() => disposed.Run(() => ran = true));
        Assert.False(ran);
    }

    [Fact]
    public void Sysctl_reads_and_writes_inside_the_namespace_only()
    {
        using var node = new TestNode();
        var pod = node.AddPod();
        Assert.Equal("0", node.Namespace.ReadSysctl("net.ipv4.ip_forward"));
        node.Namespace.WriteSysctl("net.ipv4.ip_forward", "1");
        Assert.Equal("1", node.Namespace.ReadSysctl("net.ipv4.ip_forward"));
        Assert.Equal("0", pod.Namespace.ReadSysctl("net.ipv4.ip_forward"));
        Assert.Equal("1", node.Namespace.ReadSysctl("net/ipv4/conf/ens10/forwarding"));
    }

    [Fact]
    public void Sockets_opened_in_a_namespace_stay_there()
    {
        using var node = new TestNode();
        // node.Client was opened on a thread that has ended; it still sees the node's links from this thread.
        Assert.NotNull(node.Client.TryGetLink("ens10"));
        using var here = RouteClient.Open();
        Assert.Null(here.TryGetLink("ens10"));
    }
}
