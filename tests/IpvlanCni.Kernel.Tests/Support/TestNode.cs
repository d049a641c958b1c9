using System.Net;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>
/// A stand-in for a Kubernetes node, isolated per test: a named namespace (/run/netns/&lt;Name&gt;) playing the node's
/// root namespace, with a dummy master link in it (up, addressed), and pod namespaces created on demand.
/// <code>
/// using var node = new TestNode();                       // master "ens10" with 10.10.0.1/24
/// var pod = node.AddPod();                               // /run/netns/&lt;node&gt;-p1, its own RouteClient
/// node.Client.CreateLink(new IpvlanLinkSpec("tmp0", node.Master.Index, IpvlanMode.L2) { Namespace = pod.Namespace });
/// </code>
/// </summary>
public sealed class TestNode : IDisposable
{
    readonly List<TestPod> _pods = [];

    public TestNode(string masterName = "ens10", string? masterAddress = "10.10.0.1/24")
    {
        Sandbox.Require();
        Name = $"node{Random.Shared.Next(0x1000000):x6}";
        Namespace = NetNamespace.CreateNamed(Name);
        try
        {
            Client = RouteClient.OpenIn(Namespace);
            Client.CreateLink(new DummyLinkSpec(masterName));
            int index = Client.GetLink(masterName).Index;
            Client.ChangeLink(index, new LinkChange { Up = true });
            if (masterAddress is not null)
                Client.AddAddress(new AddressInfo(index, IpPrefix.Parse(masterAddress)));
            var lo = Client.GetLink("lo");
            Client.ChangeLink(lo.Index, new LinkChange { Up = true });
            MasterName = masterName;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The namespace's name under /run/netns.</summary>
    public string Name { get; }
    public NetNamespace Namespace { get; }
    /// <summary>A socket bound to the node namespace.</summary>
    public RouteClient Client { get; } = null!;
    public string MasterName { get; } = "";
    /// <summary>The master link as the kernel reports it now.</summary>
    public LinkInfo Master => Client.GetLink(MasterName);
    public IReadOnlyList<TestPod> Pods => _pods;

    /// <summary>A new pod namespace /run/netns/&lt;node&gt;-p&lt;n&gt; with lo up.</summary>
    public TestPod AddPod()
    {
        string name = $"{Name}-p{_pods.Count + 1}";
        var ns = NetNamespace.CreateNamed(name);
        var client = RouteClient.OpenIn(ns);
        var pod = new TestPod(name, ns, client);
        _pods.Add(pod);
        client.ChangeLink(client.GetLink("lo").Index, new LinkChange { Up = true });
        return pod;
    }

    /// <summary>Runs a program inside the node namespace.</summary>
    public ProgramResult Exec(string file, params string[] args) => Programs.Run(Namespace, file, args);

    public void Dispose()
    {
        foreach (var pod in _pods)
            pod.Dispose();
        Client?.Dispose();
        Namespace?.Dispose();
        // Deleting the mount frees the namespace and every link in it.
        NetNamespace.DeleteNamed(Name);
    }
}

/// <summary>A pod's namespace (/run/netns/&lt;Name&gt;) and a client bound to it.</summary>
public sealed class TestPod(string name, NetNamespace ns, RouteClient client) : IPodNamespace, IDisposable
{
    public string Name { get; } = name;
    public NetNamespace Namespace { get; } = ns;
    public RouteClient Client { get; } = client;
    /// <summary>The path a container runtime would pass as CNI_NETNS.</summary>
    public string Path => Namespace.Path;

    /// <summary>Pings from inside the pod: true when a reply came back within <paramref name="seconds"/> (default 2).</summary>
    /// <remarks>Where no reply is the expected answer, 1 s is plenty: replies between namespaces take microseconds.</remarks>
    public bool Ping(IPAddress address, int seconds = 2) => Programs.Ping(Namespace, address, seconds);

    public ProgramResult Exec(string file, params string[] args) => Programs.Run(Namespace, file, args);

    public void Dispose()
    {
        Client.Dispose();
        Namespace.Dispose();
        NetNamespace.DeleteNamed(Name);
    }
}
