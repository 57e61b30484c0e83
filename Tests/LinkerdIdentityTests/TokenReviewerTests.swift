import KubeModel
import LinkerdCore
import LinkerdIdentity
import LinkerdTestSupport
import Testing

/// The TokenReview answers a real server gives that the loopback one does not.
@Suite struct TokenReviewerTests {
    private func review(
        answering status: TokenReview.ReviewStatus
    ) async -> (Result<TokenIdentity, IdentityError>, [TokenReview]) {
        let api = ScriptedTokenReviews { review in
            var review = review
            review.status = status
            return review
        }
        let reviewer = TokenReviewer(api: api)
        do {
            return (.success(try await reviewer.review(token: "t")), api.reviews.value)
        } catch {
            return (.failure(error), api.reviews.value)
        }
    }

    @Test func asksForTheIdentityAudience() async throws {
        let (result, reviews) = await review(
            answering: .init(authenticated: true, user: UserInfo(username: "system:serviceaccount:emojivoto:web")))
        #expect(try result.get() == TokenIdentity(username: "system:serviceaccount:emojivoto:web"))
        #expect(reviews.map(\.spec) == [TokenReview.Spec(token: "t", audiences: ["identity.l5d.io"])])
    }

    @Test func anUnauthenticatedTokenIsAFailedPrecondition() async {
        let (result, _) = await review(answering: .init(authenticated: false))
        #expect(
            result.failure
                == IdentityError(code: .failedPrecondition, message: "authentication token could not be authenticated"))
    }

    @Test func anAudienceErrorIsRetriedOnceWithoutAudience() async {
        let error = "token audiences [\"https://kubernetes.default.svc\"] is invalid for the target audiences"
        let (result, reviews) = await review(answering: .init(authenticated: false, error: error))
        #expect(reviews.map(\.spec.audiences) == [["identity.l5d.io"], nil])
        #expect(
            result.failure
                == IdentityError(code: .invalidArgument, message: "authentication token is invalid: \(error)"))
    }

    @Test(arguments: [
        ("system:serviceaccount:emojivoto", "is not of the form system:serviceaccount:<namespace>:<name>"),
        ("user:serviceaccount:emojivoto:web", "is not of the form system:serviceaccount:<namespace>:<name>"),
        ("system:node:emojivoto:web", "is not a ServiceAccount's"),
        ("system:serviceaccount:Emojivoto:web", "is invalid: \"Emojivoto\" is not a valid namespace"),
        ("system:serviceaccount:emojivoto:", "is invalid: \"\" is not a valid service account: it is empty"),
    ])
    func badUserNamesAreInvalidArguments(username: String, problem: String) async {
        let (result, _) = await review(answering: .init(authenticated: true, user: UserInfo(username: username)))
        #expect(result.failure?.code == .invalidArgument)
        #expect(
            result.failure?.message.hasPrefix("token user name \"\(username)\" \(problem)") == true,
            "\(String(describing: result.failure))")
    }

    @Test func theIdentityNameIsBuiltFromTheUserName() throws {
        let token = try TokenIdentity(username: "system:serviceaccount:emojivoto:web")
        #expect(token.description == "system:serviceaccount:emojivoto:web")
        #expect(
            try token.identityName(controlPlaneNamespace: "linkerd", trustDomain: "cluster.local").description
                == "web.emojivoto.serviceaccount.identity.linkerd.cluster.local")
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}
