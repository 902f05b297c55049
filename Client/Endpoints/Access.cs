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

    /// <summary>
    /// <see cref="MayReadProject(ClaimsPrincipal, AccountView)"/> for a project known by its grain: service and admin
    /// without a call; a plain user only for an existing project they created (an unknown one is not theirs either).
    /// </summary>
    public static async Task<bool> MayReadProjectAsync(ClaimsPrincipal caller, IProjectGrain project)
    {
        if (caller.IsService()) return true;
        var account = await project.GetAccount();
        return account.Problem is null && MayReadProject(caller, account.Value!);
    }

    /// <summary>The account's grain when the caller may read it (<see cref="MayReadUser"/>, <see cref="MayReadProjectAsync"/>), else null.</summary>
    public static async Task<IAccountGrain?> ReadableAccountAsync(AccountKind kind, Guid id, ClaimsPrincipal caller, IClusterClient cluster)
    {
        if (kind == AccountKind.User) return MayReadUser(caller, id) ? cluster.GetGrain<IUserGrain>(id) : null;
        var project = cluster.GetGrain<IProjectGrain>(id);
        return await MayReadProjectAsync(caller, project) ? project : null;
    }

    public const string NotYours = "This token may read only its own user account and the projects its subject created.";
}
