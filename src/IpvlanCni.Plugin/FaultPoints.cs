namespace IpvlanCni.Plugin;

/// <summary>
/// Named points between ADD's steps where the test suites make the plugin fail (exception, so rollback runs) or
/// die (SIGKILL, so nothing runs): IPVLAN_CNI_FAULT="step:fail" or "step:crash". Only a test build has them: the
/// shipped binary is compiled without IPVLAN_CNI_FAULTS, where <see cref="Reach"/> is empty and reads no variable
/// (make publishes the fault-enabled build to artifacts/test/bin for the kernel suite alone).
/// </summary>
public static class FaultPoints
{
    public const string Variable = "IPVLAN_CNI_FAULT";

    /// <summary>This build obeys <see cref="Variable"/>.</summary>
#if IPVLAN_CNI_FAULTS
    public const bool Enabled = true;
#else
    public const bool Enabled = false;
#endif

    /// <summary>Every point ADD passes, in order.</summary>
    public static readonly IReadOnlyList<string> AddSteps =
        ["recorded", "master-ready", "addresses-reserved", "host-side-ready", "nat-applied", "link-created", "link-configured"];

    public static void Reach(string step, IReadOnlyDictionary<string, string> environment)
    {
#if IPVLAN_CNI_FAULTS
        if (!environment.TryGetValue(Variable, out string? fault) || !fault.StartsWith(step + ":", StringComparison.Ordinal))
            return;
        if (fault.EndsWith(":crash", StringComparison.Ordinal))
            System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no finally, no rollback, like kill -9
        throw new InjectedFaultException(step);
#endif
    }
}

public sealed class InjectedFaultException(string step) : Exception($"injected fault at step \"{step}\"");
