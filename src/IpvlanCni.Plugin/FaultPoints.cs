namespace IpvlanCni.Plugin;

/// <summary>
/// Named points between ADD's steps where the test suites make the plugin fail (exception, so rollback runs) or
/// die (SIGKILL, so nothing runs): IPVLAN_CNI_FAULT="step:fail" or "step:crash". Unset in production, where a
/// point costs one dictionary lookup.
/// </summary>
public static class FaultPoints
{
    public const string Variable = "IPVLAN_CNI_FAULT";

    /// <summary>Every point ADD passes, in order.</summary>
    public static readonly IReadOnlyList<string> AddSteps =
        ["recorded", "master-ready", "addresses-reserved", "host-side-ready", "nat-applied", "link-created", "link-configured"];

    public static void Reach(string step, IReadOnlyDictionary<string, string> environment)
    {
        if (!environment.TryGetValue(Variable, out string? fault) || !fault.StartsWith(step + ":", StringComparison.Ordinal))
            return;
        if (fault.EndsWith(":crash", StringComparison.Ordinal))
            System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no finally, no rollback, like kill -9
        throw new InjectedFaultException(step);
    }
}

public sealed class InjectedFaultException(string step) : Exception($"injected fault at step \"{step}\"");
