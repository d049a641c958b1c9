// Kernel-test support, shared by every layer's kernel tests:
//   Sandbox.Require()              fails (never skips) unless we run as root inside tools/sandbox/run with ipvlan.
//   KernelTest                     base class whose constructor calls Sandbox.Require().
//   TestNode / TestPod             a throw-away "node" namespace with a dummy master (default ens10, up, addressed)
//                                  and pod namespaces on demand, each with its own RouteClient; Dispose removes all.
//   PluginRunner                   Scenarios' CniRuntime (the published plugin, called as a runtime calls it) with the
//                                  node's own state and IPAM folders; Scenarios' Programs runs any program in a namespace.
//   NodeSnapshot                   the node (and pods, folders, NAT rules) as comparable lines, with a diff.
//   RecordingTransport             a real socket that keeps the datagrams it receives (for golden bytes).
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>The guard: kernel tests must run in the user-mode-linux sandbox, and fail loudly anywhere else.</summary>
public static class Sandbox
{
    static readonly Lazy<string?> Problem = new(Check);

    /// <summary>Throws unless IPVLANCNI_SANDBOX=1 and an ipvlan link can really be created.</summary>
    public static void Require()
    {
        if (Problem.Value is { } problem)
            throw new InvalidOperationException(
                $"kernel tests must run inside the sandbox: {problem}. Run: tools/sandbox/run dotnet test tests/IpvlanCni.Kernel.Tests --no-build");
    }

    static string? Check()
    {
        if (Environment.GetEnvironmentVariable("IPVLANCNI_SANDBOX") != "1")
            return "IPVLANCNI_SANDBOX is not 1 (this is not the sandbox)";
        string name = $"probe{Environment.ProcessId}";
        try
        {
            using var ns = NetNamespace.CreateNamed(name);
            using var client = RouteClient.OpenIn(ns);
            client.CreateLink(new DummyLinkSpec("probe0"));
            int master = client.GetLink("probe0").Index;
            client.CreateLink(new IpvlanLinkSpec("probe1", master, IpvlanMode.L2));
            return null;
        }
        catch (Exception e)
        {
            return $"cannot create an ipvlan link ({e.Message})";
        }
        finally
        {
            try { NetNamespace.DeleteNamed(name); } catch (Exception) { /* the probe's own failure is the news */ }
        }
    }
}

/// <summary>Base class for kernel tests: refuses to run outside the sandbox.</summary>
public abstract class KernelTest
{
    protected KernelTest() => Sandbox.Require();

    /// <summary>A short unique name (namespaces, links are limited to 15 characters).</summary>
    protected static string UniqueName(string prefix) => $"{prefix}{Random.Shared.Next(0x100000):x5}";
}
