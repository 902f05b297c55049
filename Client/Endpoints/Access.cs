using System.Security.Claims;
using Billing.Client.Hosting;

namespace Billing.Client.Endpoints;

/// <summary>Which accounts a caller may read: the checks the read endpoints make after the role policies.</summary>
internal static class Access
{
    /// <summary>Plain users may read their own user account; service and admin may read all.</summary>
    public static bool MayReadUser(ClaimsPrincipal caller, Guid userId) => caller.IsService() || caller.SubjectId() == userId;

    /// <summary>Plain users may read the projects they created; service and admin may read all.</summary>
    public static bool MayReadProject(ClaimsPrincipal caller, AccountView project) =>
        caller.IsService() || (caller.SubjectId() is { } sub && project.CreatorId == sub);

    public const string NotYours = "This token may read only its own user account and the projects its subject created.";
}
