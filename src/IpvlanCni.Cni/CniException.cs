namespace IpvlanCni.Cni;

/// <summary>The spec's error codes; ours start at 100.</summary>
public static class CniErrorCode
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodeFailure = 6;
    public const int InvalidNetworkConfig = 7;
    public const int TryAgainLater = 11;
    public const int PluginNotAvailable = 50;
    public const int PluginNotAvailableLimitedConnectivity = 51;
    /// <summary>The kernel refused a netlink request.</summary>
    public const int KernelRefused = 100;
    /// <summary>No free address left in the range.</summary>
    public const int AddressesExhausted = 101;
    /// <summary>A delegated IPAM plugin failed.</summary>
    public const int IpamPluginFailed = 102;
    /// <summary>NAT rules could not be applied.</summary>
    public const int NatFailed = 103;
    /// <summary>The attachment, or CNI_IFNAME in the container, exists already.</summary>
    public const int AlreadyExists = 104;
    /// <summary>CHECK found the attachment different from what ADD made.</summary>
    public const int CheckFailed = 105;
    /// <summary>Anything else that went wrong inside the plugin.</summary>
    public const int Internal = 999;
}

/// <summary>An error the dispatcher writes as the spec's JSON: {"cniVersion","code","msg","details"}.</summary>
public sealed class CniException(int code, string message, string? details = null, Exception? inner = null)
    : Exception(message, inner)
{
    public int Code { get; } = code;
    public string? Details { get; } = details;

    /// <summary>
    /// Any failure as the spec's error: ours as thrown; a kernel refusal as 100 with the operation, errno and the
    /// kernel's extended-ack text; a file the node would not read or write as 5; only a bug as 999.
    /// </summary>
    public static CniException From(Exception e) => e switch
    {
        CniException cni => cni,
        IpvlanCni.Netlink.NetlinkException kernel => new(CniErrorCode.KernelRefused, kernel.Message, null, e),
        IOException or UnauthorizedAccessException => new(CniErrorCode.IoFailure, e.Message, null, e),
        _ => new(CniErrorCode.Internal, e.Message, e.GetType().FullName, e),
    };
}
